// Scatter a dense block back to its rows: dst[idx[i], :] = src[i, :] for i < count.n_rows.
// Grid: (ceil(width / WG), max rows).

//! use lib/step.wgsl

struct Params { width: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> count: Step;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read> src: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y;
  let c = gid.x;
  if (i >= count.n_rows || c >= params.width) { return; }
  dst[idx[i] * params.width + c] = src[i * params.width + c];
}
