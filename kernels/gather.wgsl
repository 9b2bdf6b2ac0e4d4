// Gather rows into a dense block: dst[i, :] = src[idx[i], :] for i < count.n_rows.
// Words are 32-bit (f32 activations or u32 records alike). Grid: (ceil(width / WG), max rows).

//! use lib/step.wgsl

struct Params { width: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> count: Step;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read> src: array<u32>;
@group(0) @binding(4) var<storage, read_write> dst: array<u32>;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y;
  let c = gid.x;
  if (i >= count.n_rows || c >= params.width) { return; }
  dst[i * params.width + c] = src[idx[i] * params.width + c];
}
