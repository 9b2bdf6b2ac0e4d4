// Rows scaled by a per-row factor, [rows, width]: y[r, c] (+)= f(s[r]) · x[r, c], f(s) = s, or 1 − s with
// flags bit 1 (FlexiDepth: the MLP's output times the router's g, the adapter's times 1 − g; DMTD's 0/1 row
// mask m_p is s = the mask). flags bit 0: y += (else y =). The backward's input gradient is the same op on
// dy (dx = f(s) · dy); ds is row_scale_grad.wgsl. x may not alias y.
// Bindings: 0 params {rows, width, flags}, 1 s (f32 [rows]), 2 x, 3 y. Grid: ceil(rows · width / WG)
// workgroups (flat, lib/grid.wgsl), one element per invocation.

//! use lib/grid.wgsl

struct Params { rows: u32, width: u32, flags: u32, pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = flat_group(wid, nwg) * WG + li;
  if (i >= params.rows * params.width) {
    return;
  }
  let v = s[i / params.width];
  let f = select(v, 1.0 - v, (params.flags & 2u) != 0u);
  y[i] = f * x[i] + select(0.0, y[i], (params.flags & 1u) != 0u);
}
