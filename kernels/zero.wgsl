// Zeroes n floats (the gradients before a step's first micro-batch): x[i] = 0 for i < n.
// Bindings: 0 params {n}, 1 x. Grid: ceil(n / WG) workgroups (flat, lib/grid.wgsl).

//! use lib/grid.wgsl

struct Params { n: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = flat_group(wid, nwg) * WG + li;
  if (i < params.n) {
    x[i] = 0.0;
  }
}
