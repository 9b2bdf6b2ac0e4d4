// Training RMSNorm backward, input gradient (the forward is rmsnorm_train.wgsl; dweight is
// rmsnorm_dweight.wgsl). With y = x · rstd · weight and rstd = (mean(x²) + eps)^-1/2:
//   dx[r, k] (+)= rstd · (dy[r, k] · weight[k] − x[r, k] · rstd² · Σ_j dy[r, j] · weight[j] · x[r, j] / width)
// dx is overwritten, or accumulated with flags bit 0 (the residual stream's gradient, which the norm's input
// gradient adds to). dx may not alias dy or x.
// Bindings: 0 params {rows, width, flags}, 1 x, 2 weight, 3 dy, 4 rstd (saved by the forward), 5 dx.
// Grid: rows workgroups (flat); WG threads per row as the forward.

//! use lib/grid.wgsl
//! use lib/row_reduce.wgsl

struct Params { rows: u32, width: u32, flags: u32, pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let r = flat_group(wid, nwg);
  if (r >= params.rows) {
    return;
  }
  let w = params.width;
  let base = r * w;
  var s = 0.0;
  for (var k = li; k < w; k += WG) {
    s += dy[base + k] * weight[k] * x[base + k];
  }
  let rs = rstd[r];
  let c = row_sum(li, s) * rs * rs / f32(w);
  let add = (params.flags & 1u) != 0u;
  for (var k = li; k < w; k += WG) {
    let g = rs * (dy[base + k] * weight[k] - x[base + k] * c);
    dx[base + k] = g + select(0.0, dx[base + k], add);
  }
}
