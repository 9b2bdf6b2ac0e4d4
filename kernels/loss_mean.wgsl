// The mean loss of a batch for logging, after cross_entropy.wgsl: one workgroup sums the per-row losses and
// counts the counted rows (target neither `ignore` nor past the vocabulary), each thread over a strided slice,
// then a fixed-order tree: out = {mean (0 when no row counts), sum, count}. out is overwritten.
// Bindings: 0 params {rows, vocab, ignore}, 1 targets, 2 loss (f32 [rows]), 3 out (f32 [3]). Grid: 1.

//! use lib/row_reduce.wgsl

struct Params { rows: u32, vocab: u32, ignore: u32, pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read> loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32) {
  var s = 0.0;
  var n = 0.0;
  for (var r = li; r < params.rows; r += WG) {
    let t = targets[r];
    let counted = t != params.ignore && t < params.vocab;
    s += select(0.0, loss[r], counted);
    n += select(0.0, 1.0, counted);
  }
  s = row_sum(li, s);
  n = row_sum(li, n);
  if (li == 0u) {
    out[0] = select(0.0, s / n, n > 0.0);
    out[1] = s;
    out[2] = n;
  }
}
