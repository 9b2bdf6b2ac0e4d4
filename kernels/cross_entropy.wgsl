// Cross-entropy fused with softmax, one workgroup per row of logits [rows, vocab]:
//   loss[r] = logsumexp(logits[r]) − logits[r, t]                      (t = targets[r])
//   logits[r, i] ← (softmax(logits[r])[i] − [i == t]) · scale[0]       (dlogits, in place)
// A row whose target is `ignore` (or past the vocabulary) does not count: loss 0 and dlogits 0. scale[0] is
// written per step (1 / counted rows, or a weight); loss is unscaled (loss_mean.wgsl averages it for logs).
// logits and loss are overwritten.
// Bindings: 0 params {rows, vocab, ignore}, 1 targets (u32 [rows]), 2 scale (f32), 3 logits (read-write),
// 4 loss (f32 [rows]). Grid: rows workgroups (flat, lib/grid.wgsl); WG threads stride over the vocabulary
// (max, then Σ exp, then the gradient: three passes over the row, sums in a fixed order).

//! use lib/grid.wgsl
//! use lib/row_reduce.wgsl

struct Params { rows: u32, vocab: u32, ignore: u32, pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> logits: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;

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
  let V = params.vocab;
  let base = r * V;
  let t = targets[r];
  let counted = t != params.ignore && t < V;
  var m = -3.0e38;
  for (var i = li; i < V; i += WG) {
    m = max(m, logits[base + i]);
  }
  m = row_max(li, m);
  var s = 0.0;
  for (var i = li; i < V; i += WG) {
    s += exp(logits[base + i] - m);
  }
  s = row_sum(li, s);
  // Every thread reads the target's logit before any thread overwrites the row.
  let lt = logits[base + select(0u, t, counted)];
  workgroupBarrier();
  let k = select(0.0, scale[0], counted);
  let inv = 1.0 / s;
  for (var i = li; i < V; i += WG) {
    let p = exp(logits[base + i] - m) * inv;
    logits[base + i] = (p - select(0.0, 1.0, i == t)) * k;
  }
  if (li == 0u) {
    loss[r] = select(0.0, m + log(s) - lt, counted);
  }
}
