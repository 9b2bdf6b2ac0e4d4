// Training SwiGLU backward (forward: swiglu_train.wgsl), elementwise over [N, I]. With s = sigmoid(gate):
//   dgate = dact · up · s · (1 + gate · (1 − s)),   dup = dact · gate · s
// dgate and dup are overwritten (each feeds its own projection's backward).
// Bindings: 0 params {n (elements)}, 1 gate, 2 up, 3 dact, 4 dgate, 5 dup. Grid: ceil(n / WG) workgroups
// (flat, lib/grid.wgsl).

//! use lib/grid.wgsl

struct Params { n: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read> dact: array<f32>;
@group(0) @binding(4) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(5) var<storage, read_write> dup: array<f32>;

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
  let g = gate[i];
  let d = dact[i];
  let s = 1.0 / (1.0 + exp(-g));
  dgate[i] = d * up[i] * s * (1.0 + g * (1.0 - s));
  dup[i] = d * g * s;
}
