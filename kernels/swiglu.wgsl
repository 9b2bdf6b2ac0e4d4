// SwiGLU activation: act[r, c] = silu(gu[r, c]) * gu[r, width + c], where each row of gu holds the
// outputs of the stacked [gate; up] projection (or the adapter's [gate; down]).
// Grid: (ceil(width / WG), n_rows).

struct Params { width: u32, pad0: u32, pad1: u32, pad2: u32 }
struct Step { n_rows: u32, n_out: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> gu: array<f32>;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let r = gid.y;
  if (r >= step.n_rows || c >= params.width) { return; }
  let g = gu[r * 2u * params.width + c];
  act[r * params.width + c] = g / (1.0 + exp(-g)) * gu[r * 2u * params.width + params.width + c];
}
