// One tile of an online softmax over the KV cache, for the attention kernels whose workgroup scores WG
// positions at a time (attention.wgsl, attention_split.wgsl; the kernel defines `const WG`).

// The score of no position, and the running max before any.
const NEG_BIG: f32 = -3.0e38;

var<workgroup> score: array<f32, WG>;
var<workgroup> prob: array<f32, WG>;

// The running max after a tile, and the factor e^(m − m_new) that rescales what was summed before it.
struct TileFold {
  m_new: f32,
  corr: f32,
}

// Folds the tile's scores into the running max m and sum *l: invocation `lane` brings score s (live: its
// position is in the tile, of `count`). Leaves prob[i] = e^(score_i − m_new) for the tile's positions, for the
// caller's weighted sum of V. Uniform control flow only.
fn softmax_tile(lane: u32, s: f32, live: bool, count: u32, m: f32, l: ptr<function, f32>) -> TileFold {
  score[lane] = s;
  workgroupBarrier();
  var m_tile = NEG_BIG;
  for (var i = 0u; i < count; i++) { m_tile = max(m_tile, score[i]); }
  let m_new = max(m, m_tile);
  prob[lane] = select(0.0, exp(s - m_new), live);
  workgroupBarrier();
  let corr = exp(m - m_new);
  var tile_sum = 0.0;
  for (var i = 0u; i < count; i++) { tile_sum += prob[i]; }
  *l = *l * corr + tile_sum;
  return TileFold(m_new, corr);
}
