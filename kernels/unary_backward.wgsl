// Elementwise activation, backward (forward: unary.wgsl), from its saved output y:
//   tanh (flags bits 0-1 = 0): dx (+)= dy · (1 − y²);   sigmoid (= 1): dx (+)= dy · y · (1 − y)
// flags bit 2: dx += (else dx =).
// Bindings: 0 params {n, flags}, 1 y, 2 dy, 3 dx. Grid: ceil(n / WG) workgroups (flat, lib/grid.wgsl).

//! use lib/grid.wgsl

struct Params { n: u32, flags: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

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
  let v = y[i];
  let d = select(1.0 - v * v, v * (1.0 - v), (params.flags & 3u) == 1u);
  dx[i] = dy[i] * d + select(0.0, dx[i], (params.flags & 4u) != 0u);
}
