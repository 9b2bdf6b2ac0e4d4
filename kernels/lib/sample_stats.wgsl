// PASS 0 and PASS 1 of `sample`: block maxima; then the row's maximum (greedy rows end there) and, for
// sampling rows, per block how many tokens pass each cutoff, their masses, and each token's level.

// PASS 0: block max / argmax (strided over the block's slice; ties -> lowest index).
fn pass_max(t: u32, blk: u32, j: u32) {
  let vocab = VOCAB;
  let base = j * vocab;
  let lo = blk * CHUNK;
  let hi = min(lo + CHUNK, vocab);
  var bk = 0u;
  var bi = NONE;
  for (var i = lo + t; i < hi; i += WG) {
    let k = f2key(logits[base + i]);
    let better = bi == NONE || k > bk;
    bk = select(bk, k, better);
    bi = select(bi, i, better);
  }
  group_best(t, bk, bi);
  if (t == 0u) {
    let p = OFF_PART + (j * NBLOCKS + blk) * 2u;
    work[p] = atomicLoad(&best_pair[0]);
    work[p + 1u] = atomicLoad(&best_pair[1]);
  }
}

// The LM head's pairs combined into best_pair by the whole workgroup, as PASS 0 combines its invocations'
// maxima: there may be many pairs, and llvmpipe ends any loop after 65535 iterations.
fn head_max(t: u32) {
  var hk = 0u;
  var hi = NONE;
  for (var q = t; q < HEAD_PARTS; q += WG) {
    let k = head[2u * q];
    let i = head[2u * q + 1u];
    let better = i != NONE && (hi == NONE || k > hk);
    hk = select(hk, k, better);
    hi = select(hi, i, better);
  }
  group_best(t, hk, hi);
}

// The row's (max key, index) from PASS 0's block pairs in `part`.
fn blocks_max(j: u32) -> vec2<u32> {
  var bk = 0u;
  var bi = NONE;
  let p = OFF_PART + j * NBLOCKS * 2u;
  for (var q = 0u; q < NBLOCKS; q++) {
    let k = work[p + q * 2u];
    let i = work[p + q * 2u + 1u];
    if (i != NONE && (bi == NONE || k > bk)) {
      bk = k;
      bi = i;
    }
  }
  return vec2<u32>(bk, bi);
}

// Invocation 0: the row's max logit into sf and whether it samples into sh.mode; block 0 records both and
// the argmax in the row's info, and finishes a greedy row.
fn row_max(blk: u32, j: u32, sp: SampleParams) {
  var best: vec2<u32>;
  if (HEAD_PARTS > 0u) {
    best = vec2<u32>(atomicLoad(&best_pair[0]), atomicLoad(&best_pair[1]));
  } else {
    best = blocks_max(j);
  }
  let greedy = !(sp.temperature > 0.0);
  sh.mode = select(1u, 0u, greedy);
  sf = key2f(best.x);
  if (blk == 0u) {
    let info = info_at(j);
    work[info] = sh.mode;
    work[info + 1u] = bitcast<u32>(sf);
    work[info + 2u] = best.y;
    if (greedy) {
      emit_token(j, best.y);
    }
  }
}

// An invocation's share of a block's statistics: per cutoff, counts (two 16-bit halves per word: cutoffs
// c and c + 4) and lower bounds of the masses (sums of w >> 8, cutoffs c in ms0 and c + 4 in ms1); and
// the exact total mass.
struct SliceStats {
  cnt: vec4<u32>,
  ms0: vec4<u32>,
  ms1: vec4<u32>,
  total: vec2<u32>,
}

// The levels of slice r's tokens (x = (logit - m) * inv_t, row from `base`) into `work` at lw, 8 a word,
// with their counts; their masses only with `mass` (to place the top-p nucleus when top-k is off). Two
// loops rather than one with a branch: fewer live registers in the common one.
fn slice_stats(base: u32, r: vec2<u32>, lw: u32, m: f32, inv_t: f32, mass: bool) -> SliceStats {
  let nw = (r.y - r.x + 7u) / 8u;
  var cnt = vec4<u32>(0u);
  var ms0 = vec4<u32>(0u);
  var ms1 = vec4<u32>(0u);
  var total = vec2<u32>(0u);
  if (mass) {
    for (var w = 0u; w < nw; w++) {
      var word = 0u;
      for (var q = 0u; q < 8u; q++) {
        let i = r.x + w * 8u + q;
        let x = (logits[base + min(i, r.y - 1u)] - m) * inv_t;
        let u = cut_flags(x, i < r.y);
        cnt += u;
        word |= level_of(u) << (q * 4u);
        let wt = select(0u, weight(x), i < r.y);
        total = add64(total, vec2<u32>(wt, 0u));
        ms0 += select(vec4<u32>(0u), vec4<u32>(wt >> 8u), (u & vec4<u32>(0xffffu)) != vec4<u32>(0u));
        ms1 += select(vec4<u32>(0u), vec4<u32>(wt >> 8u), u > vec4<u32>(0xffffu));
      }
      work[lw + w] = word;
    }
  } else {
    for (var w = 0u; w < nw; w++) {
      var word = 0u;
      for (var q = 0u; q < 8u; q++) {
        let i = r.x + w * 8u + q;
        let u = cut_flags((logits[base + min(i, r.y - 1u)] - m) * inv_t, i < r.y);
        cnt += u;
        word |= level_of(u) << (q * 4u);
      }
      work[lw + w] = word;
    }
  }
  return SliceStats(cnt, ms0, ms1, total);
}

// Every invocation's share summed into the block's counters, which go to its `stats` in `work`.
fn flush_stats(t: u32, blk: u32, j: u32, s: SliceStats) {
  for (var c = 0u; c < 4u; c++) {
    if ((s.cnt[c] & 0xffffu) != 0u) {
      atomicAdd(&hist_c[c], s.cnt[c] & 0xffffu);
    }
    if ((s.cnt[c] >> 16u) != 0u) {
      atomicAdd(&hist_c[4u + c], s.cnt[c] >> 16u);
    }
    atomic_add64(c, vec2<u32>(s.ms0[c], 0u));
    atomic_add64(4u + c, vec2<u32>(s.ms1[c], 0u));
  }
  atomic_add64(NCUT, s.total);
  workgroupBarrier();
  if (t <= NCUT) {
    let st = stats_at(j, blk) + t * 3u;
    work[st] = atomicLoad(&hist_c[t]);
    work[st + 1u] = atomicLoad(&hist_lo[t]);
    work[st + 2u] = atomicLoad(&hist_hi[t]);
  }
}

// PASS 1: row max; greedy rows are finished here. Sampling rows: cutoff statistics per block.
fn pass_stats(t: u32, blk: u32, j: u32) {
  let sp = sample_params[j];
  if (HEAD_PARTS > 0u) {
    head_max(t);
  }
  atomicStore(&hist_c[t], 0u);
  atomicStore(&hist_lo[t], 0u);
  atomicStore(&hist_hi[t], 0u);
  if (t == 0u) {
    row_max(blk, j, sp);
  }
  let s = workgroupUniformLoad(&sh);
  if (s.mode == 0u) {
    return;
  }
  let need_mass = sp.top_k == 0u && top_p24(sp.top_p) < P_ONE;
  let lw = levels_at(j, blk, t);
  let inv_t = inv_temp(sp.temperature);
  flush_stats(t, blk, j, slice_stats(j * VOCAB, own_range(t, blk), lw, sf, inv_t, need_mass));
}
