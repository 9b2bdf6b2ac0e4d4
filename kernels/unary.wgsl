// Elementwise activation, forward: y = tanh(x) (flags bits 0-1 = 0) or sigmoid(x) (= 1): the router's
// nonlinearities. y is overwritten (and saved: the backward, unary_backward.wgsl, reads y, not x).
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
  let v = x[i];
  // Clamped: some drivers compute tanh as a ratio of exponentials that overflows to NaN for large |v|;
  // tanh(±15) is ±1 in f32.
  let t = tanh(clamp(v, -15.0, 15.0));
  let s = 1.0 / (1.0 + exp(-v));
  y[i] = select(t, s, (params.flags & 3u) == 1u);
}
