// y (+)= x elementwise over n floats: the residual add (y += x) and its backward (the gradient passes through
// unchanged: dx += dy, or dx = dy for the first contribution). flags bit 0: add (else copy). x may not alias y.
// Bindings: 0 params {n, flags}, 1 x, 2 y. Grid: ceil(n / WG) workgroups (flat, lib/grid.wgsl).

//! use lib/grid.wgsl

struct Params { n: u32, flags: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = flat_group(wid, nwg) * WG + li;
  if (i >= params.n) {
    return;
  }
  y[i] = x[i] + select(0.0, y[i], (params.flags & 1u) != 0u);
}
