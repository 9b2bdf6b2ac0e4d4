// FlexiDepth's skip loss of a training batch (the spec's L = α·L_skip + L_lm), forward and backward at once:
//   s_t = Σ_l g[l, t] over the routed layers, L_skip = (1/n) Σ_t s_t²  → loss[loss_at] (overwritten),
//   dg[l, t] += α · 2 s_t / n                                           (accumulated: the MLP × g and
//                                                                        adapter × (1 − g) scales add theirs).
// g and dg are [layers, n] row-major: routed layer l's gates at l · n (n = B·T rows of the batch).
// One workgroup: each invocation strides over the rows, then its partial sums meet in a tree of fixed shape —
// deterministic, no atomics. llvmpipe stops an invocation after 65535 loop passes in all (a loop's run costs
// its iterations + 1), so the host keeps ceil(n / WG) · (2 · layers + 3) + log2(WG) + 2 within that.
// Grid: (1).

struct Params {
  n: u32,
  layers: u32,
  alpha: f32,
  loss_at: u32, // the loss buffer's element that takes L_skip
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> dg: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;

override WG: u32 = 64u; // a power of two

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32) {
  let n = params.n;
  let scale = 2.0 * params.alpha / f32(n);
  var sq = 0.0;
  for (var t = li; t < n; t += WG) {
    var s = 0.0;
    for (var l = 0u; l < params.layers; l++) { s += g[l * n + t]; }
    sq += s * s;
    let d = scale * s;
    for (var l = 0u; l < params.layers; l++) { dg[l * n + t] += d; }
  }
  red[li] = sq;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (li < off) { red[li] += red[li + off]; }
    workgroupBarrier();
  }
  if (li == 0u) { loss[params.loss_at] = red[0] / f32(n); }
}
