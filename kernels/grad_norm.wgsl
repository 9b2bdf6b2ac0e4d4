// The global gradient norm, pass 2 (after sumsq_partial.wgsl for every gradient buffer): one workgroup sums
// the partials in a fixed order and writes norm = {‖g‖₂, clip scale} (overwritten), the clip scale as PyTorch's
// clip_grad_norm_: min(1, max_norm / (‖g‖ + 1e-6)), or 1 when max_norm ≤ 0 (no clipping). adamw.wgsl reads
// the scale from here, so clipping needs no readback.
// Bindings: 0 params {count (partials), max_norm}, 1 partials, 2 norm (f32 [2]). Grid: 1.

//! use lib/row_reduce.wgsl

struct Params { count: u32, max_norm: f32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> norm: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32) {
  var s = 0.0;
  for (var i = li; i < params.count; i += WG) {
    s += partials[i];
  }
  s = row_sum(li, s);
  if (li == 0u) {
    let n = sqrt(s);
    norm[0] = n;
    norm[1] = select(1.0, min(1.0, params.max_norm / (n + 1e-6)), params.max_norm > 0.0);
  }
}
