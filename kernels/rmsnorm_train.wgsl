// Training RMSNorm forward over rows of any width (the hidden-size norms, and Qwen3's per-head q/k norms as
// rows = N · heads of width head_dim):
//   rstd[r] = 1 / sqrt(mean(x[r]²) + eps),   y[r, k] = x[r, k] · rstd[r] · weight[k]
// saving rstd for the backward (rmsnorm_backward.wgsl, rmsnorm_dweight.wgsl). y and rstd are overwritten.
// Bindings: 0 params {rows, width, eps}, 1 x, 2 weight, 3 y, 4 rstd (f32 [rows]).
// Grid: rows workgroups (flat, lib/grid.wgsl); WG threads stride over the row and reduce in workgroup memory
// (a power of two: 8 on software GPUs, 64 on GPUs, as the inference norm).

//! use lib/grid.wgsl
//! use lib/row_reduce.wgsl

struct Params { rows: u32, width: u32, eps: f32, pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let r = flat_group(wid, nwg);
  // Every thread of a workgroup takes the same branch: the barriers inside row_sum stay uniform.
  if (r >= params.rows) {
    return;
  }
  let w = params.width;
  let base = r * w;
  var s = 0.0;
  for (var k = li; k < w; k += WG) {
    let v = x[base + k];
    s += v * v;
  }
  let scale = inverseSqrt(row_sum(li, s) / f32(w) + params.eps);
  for (var k = li; k < w; k += WG) {
    y[base + k] = x[base + k] * scale * weight[k];
  }
  if (li == 0u) {
    rstd[r] = scale;
  }
}
