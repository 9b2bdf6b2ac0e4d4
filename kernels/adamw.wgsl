// AdamW step of one parameter buffer (decoupled weight decay, bias correction), elementwise over n floats:
//   g' = g · clip;  m = β1 · m + (1 − β1) · g';  v = β2 · v + (1 − β2) · g'²
//   p = p · (1 − lr · wd · decay) − (lr / bc1) · m / (sqrt(v / bc2) + eps)
// with bc1 = 1 − β1^t and bc2 = 1 − β2^t of step t, as torch.optim.AdamW. p, m and v are updated in place.
// The step's values come from `hyper`, a small buffer the host writes per step (lr from its warm-up + cosine
// schedule); clip from grad_norm.wgsl's output (norm[1]), so clipping needs no readback.
// Bindings: 0 params {n, decay (1: weight decay applies, 0: not, e.g. norm weights)}, 1 hyper (f32 {lr, β1,
// β2, eps, wd, bc1, bc2}), 2 norm (f32 [2]: {‖g‖, clip}), 3 g, 4 p, 5 m, 6 v.
// Grid: ceil(n / WG) workgroups (flat, lib/grid.wgsl).

//! use lib/grid.wgsl

struct Params { n: u32, decay: u32, pad0: u32, pad1: u32 }
struct Hyper { lr: f32, beta1: f32, beta2: f32, eps: f32, wd: f32, bc1: f32, bc2: f32, pad: f32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> hyper: Hyper;
@group(0) @binding(2) var<storage, read> norm: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> p: array<f32>;
@group(0) @binding(5) var<storage, read_write> m: array<f32>;
@group(0) @binding(6) var<storage, read_write> v: array<f32>;

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
  let h = hyper;
  let gi = g[i] * norm[1];
  let mi = h.beta1 * m[i] + (1.0 - h.beta1) * gi;
  let vi = h.beta2 * v[i] + (1.0 - h.beta2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  let wd = select(0.0, h.lr * h.wd, params.decay != 0u);
  p[i] = p[i] * (1.0 - wd) - (h.lr / h.bc1) * mi / (sqrt(vi / h.bc2) + h.eps);
}
