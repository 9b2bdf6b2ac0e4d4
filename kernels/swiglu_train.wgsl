// Training SwiGLU forward, elementwise over [N, I]: act = silu(gate) · up, silu(g) = g · sigmoid(g), with gate
// and up in separate buffers (the gate and up projections' outputs). act is overwritten.
// Bindings: 0 params {n (elements)}, 1 gate, 2 up, 3 act. Grid: ceil(n / WG) workgroups (flat, lib/grid.wgsl).

//! use lib/grid.wgsl

struct Params { n: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;

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
  act[i] = g / (1.0 + exp(-g)) * up[i];
}
