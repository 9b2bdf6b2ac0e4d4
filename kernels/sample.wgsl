// Token sampling on the GPU: greedy, temperature, top-k, top-p, for `n_rows` rows of logits at once,
// so a decode step never needs the host to choose the next token.
//
// Four passes (override PASS), recorded back to back by GpuSampler (src/engine/sampling.ts):
//   PASS 0  grid (NB, n_rows): each block finds the max / argmax of its slice of the row.
//   PASS 1  grid (NB, n_rows): combine the block maxima. Greedy rows: block 0 writes the token; done.
//           Sampling rows: per block, how many tokens pass each of 8 fixed cutoffs x >= -CUT[c]
//           (and, for top-p without top-k, a lower bound of their mass and the exact total mass),
//           and each token's 4-bit level (the first cutoff it passes).
//   PASS 2  grid (NB, n_rows): choose the smallest cutoff c* whose tokens surely hold everything
//           top-k / top-p keeps, and copy those candidates (index, logit) to `work` in index order,
//           reading only the levels and the candidates' logits.
//   PASS 3  grid (1, n_rows): on the candidates only: radix-select the top-k threshold (counts), the
//           top-p threshold (masses), then draw the token with a prefix scan in index order.
// A greedy-only step records passes 0 and 1; passes 1, 2 and 3 return at once for greedy rows.
// HEAD_PARTS > 0 (one row): the LM head already left (max key, its index) pairs for consecutive row ranges in
// `head` (gemv_tex.wgsl ARGMAX), and PASS 1 combines those instead of PASS 0's, which is not recorded: on a
// CPU driver that saves the pass's 128K lane-by-lane loads and a dispatch.
// One workgroup of WG = 256 invocations per block. Every sum is an exact integer sum, so the
// token does not depend on NB, on the order of atomics, or on the device.
//
// CPU drivers (llvmpipe) shaped some choices: a memory access in a divergent `if` costs on every
// iteration even when not taken (rare branches with memory ops are written as loops), workgroup
// atomics cost ~7x a plain access (the radix walk reads ~32 counters per round, not 768), and
// live vec4 accumulators beyond ~16 registers spill.
//
// Semantics (src/engine/sampling.ts `referenceSample` implements the same, step for step):
//   * Logits are finite or -inf (no NaN). key(l) is the f32 bit pattern mapped to a u32 that sorts like
//     the value (-0 counts as +0; f2key, lib/sort_key.wgsl); every threshold below compares keys, so ties are
//     exact.
//   * temperature <= 0 (or NaN): greedy, argmax, ties -> lowest index.
//   * Otherwise m = max logit, inv_t = min(1 / T, 1e30) in f32, x_i = (l_i - m) * inv_t in f32, and
//     the weight of token i is w_i = u32(exp(x_i) * 2^31) (truncated) when x_i >= -24, else 0.
//     Weights are integers, summed exactly in 64 bits, so results do not depend on summation order.
//   * top_k > 0: keep tokens whose key >= the top_k-th largest key (ties at the threshold kept);
//     top_k = 0 or >= vocab keeps all. M_k = sum of the kept weights.
//   * P = u32(clamp(top_p, 0, 1) * 2^24). P < 2^24: target = max(1, ceil(P * M_k / 2^24)); tau_p is
//     the largest key such that the kept tokens with key >= tau_p weigh >= target (ties all kept).
//     top_p >= 1 keeps all; top_p <= 0 keeps only the top logit (and its ties).
//   * M = mass of the kept set. r = pcg(seed ^ pcg(position)) >> 8 (24 bits; u = r / 2^24).
//     target = floor(r * M / 2^24), exact. Scan kept ids in increasing order accumulating w_i; the
//     token is the first id whose cumulative sum > target. If M = 0 (all -inf), the argmax.
//   pcg(v): s = v * 747796405 + 2891336453; w = ((s >> ((s >> 28) + 4)) ^ s) * 277803737;
//           return (w >> 22) ^ w   (all u32, wrapping).
//
// Outputs: tokens[j] = chosen id (read by the next step's embedding gather), and
// result[j * RESULT_STRIDE] = chosen id (the other words of that slot are not touched).

//! use lib/sort_key.wgsl

struct SampleParams {
  temperature: f32,
  top_k: u32,
  top_p: f32,
  seed: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> sample_params: array<SampleParams>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(4) var<storage, read_write> result: array<u32>;
// (max key, index) pairs of the LM head's row ranges under HEAD_PARTS (any buffer otherwise)
@group(0) @binding(6) var<storage, read> head: array<u32>;
// Scratch owned by the sampler. Regions (word offsets are override constants):
//   info   [row][16]: 0 mode (0 done, 1 sample), 1 max logit bits, 2 argmax, 3 c*, 4 candidate count,
//                     5 top-k active, 6..7 total mass (lo, hi)
//   part   [row][block][2]: block max key, its index (PASS 2 replaces the key with the block's
//                           lowest candidate key)
//   stats  [row][block][STATS_WORDS]: per cutoff c: count, mass bound (lo, hi) of tokens with
//                           x >= -CUT[c]; then 0, total mass (lo, hi)
//   levels [row][block][WG][LEVEL_WORDS]: 4-bit cutoff level of each token, 8 per word
//   cand   [row][vocab][2]: candidate index, logit bits
@group(0) @binding(5) var<storage, read_write> work: array<u32>;

// Sizes are override constants, not a uniform buffer: lavapipe inlines uniform values used in
// loop bounds and redoes that (milliseconds for a shader this size) each time the bound compute
// pipeline changes, i.e. on every pass of every step.
override PASS: u32 = 0u;
override RESULT_STRIDE: u32 = 1u;
override VOCAB: u32;
// blocks per row (NB) and elements per block; the last block may be short
override NBLOCKS: u32;
override CHUNK: u32;
// elements per invocation within a block: ceil(CHUNK / WG)
override SUB: u32;
// word offsets of the regions of `work` (info starts at 0)
override OFF_PART: u32;
override OFF_STATS: u32;
override OFF_LEVELS: u32;
override OFF_CAND: u32;
// pairs in `head` (0: PASS 0's block maxima in `work`)
override HEAD_PARTS: u32 = 0u;

const WG: u32 = 256u;
const NCUT: u32 = 8u;
const NONE: u32 = 0xffffffffu;
// per block: NCUT x (count, mass bound lo, hi), then the exact total mass (0, lo, hi)
const STATS_WORDS: u32 = 27u;
// CUT[c], c = 0..7: 1, 2, 3, 4, 6, 9, 14, 24
const CUT_LO = vec4<f32>(1.0, 2.0, 3.0, 4.0);
const CUT_HI = vec4<f32>(6.0, 9.0, 14.0, 24.0);
const X_MIN: f32 = -24.0;
const W_SCALE: f32 = 2147483648.0;
const P_ONE: u32 = 16777216u;

// (key, index) of a block's maximum (PASS 0) or of the row's from the LM head's pairs (PASS 1, HEAD_PARTS)
var<workgroup> best_pair: array<atomic<u32>, 2>;

// Values every invocation of a workgroup needs for control flow; written by invocation 0 and read
// with workgroupUniformLoad.
struct Shared {
  mode: u32,
  n: u32,
  kact: u32,
  k: u32,
  p24: u32,
  a: u32,
}

var<workgroup> sh: Shared;

// State of the radix rounds of PASS 3 (written by invocation 0 between barriers).
struct Rounds {
  rounds: u32,
  round: u32,
  prefix: u32,
  pad: u32,
  rem: vec2<u32>,
}

var<workgroup> rs: Rounds;
// two sets of 256 buckets (PASS 3 alternates them); other passes use the first set
var<workgroup> hist_c: array<atomic<u32>, 512>;
var<workgroup> hist_lo: array<atomic<u32>, 512>;
var<workgroup> hist_hi: array<atomic<u32>, 512>;
var<workgroup> sa: array<u32, 256>;
var<workgroup> sb: array<u32, 256>;
// two sets of 16 group counters (sums of 16 buckets) for PASS 3
var<workgroup> grp_c: array<atomic<u32>, 32>;
var<workgroup> grp_lo: array<atomic<u32>, 32>;
var<workgroup> grp_hi: array<atomic<u32>, 32>;
var<workgroup> sg_lo: array<u32, 16>;
var<workgroup> sg_hi: array<u32, 16>;
var<workgroup> sf: f32;

// ---------------------------------------------------------------------------------------------
// helpers

fn inv_temp(t: f32) -> f32 {
  return min(1.0 / t, 1e30);
}

fn weight(x: f32) -> u32 {
  if (x >= X_MIN) {
    return u32(exp(x) * W_SCALE);
  }
  return 0u;
}

fn top_p24(p: f32) -> u32 {
  return u32(clamp(p, 0.0, 1.0) * f32(P_ONE));
}

fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

// 64-bit unsigned arithmetic on (lo, hi) pairs.
fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  let lo = a.x + b.x;
  return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn sub64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  return vec2<u32>(a.x - b.x, a.y - b.y - select(0u, 1u, a.x < b.x));
}

fn ge64(a: vec2<u32>, b: vec2<u32>) -> bool {
  return a.y > b.y || (a.y == b.y && a.x >= b.x);
}

fn max64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  return select(b, a, ge64(a, b));
}

fn gt64(a: vec2<u32>, b: vec2<u32>) -> bool {
  return a.y > b.y || (a.y == b.y && a.x > b.x);
}

fn mul32(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p00 = a0 * b0;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let p11 = a1 * b1;
  let mid = p01 + p10;
  let midc = select(0u, 0x10000u, mid < p01);
  let lo = p00 + (mid << 16u);
  let loc = select(0u, 1u, lo < p00);
  return vec2<u32>(lo, p11 + (mid >> 16u) + midc + loc);
}

// floor (or ceil) of r * m / 2^24, exact, for r <= 2^24 and m < 2^56.
fn mul_shift24(r: u32, m: vec2<u32>, round_up: bool) -> vec2<u32> {
  let a = mul32(r, m.x);
  let b = mul32(r, m.y);
  let w1 = a.y + b.x;
  let w2 = b.y + select(0u, 1u, w1 < a.y);
  var res = vec2<u32>((a.x >> 24u) | (w1 << 8u), (w1 >> 24u) | (w2 << 8u));
  if (round_up && (a.x & 0xffffffu) != 0u) {
    res = add64(res, vec2<u32>(1u, 0u));
  }
  return res;
}

fn atomic_add64(i: u32, v: vec2<u32>) {
  if (v.x == 0u && v.y == 0u) {
    return;
  }
  let old = atomicAdd(&hist_lo[i], v.x);
  let carry = select(0u, 1u, old + v.x < old);
  if (v.y + carry != 0u) {
    atomicAdd(&hist_hi[i], v.y + carry);
  }
}

fn group_add64(i: u32, v: vec2<u32>) {
  if (v.x == 0u && v.y == 0u) {
    return;
  }
  let old = atomicAdd(&grp_lo[i], v.x);
  let carry = select(0u, 1u, old + v.x < old);
  if (v.y + carry != 0u) {
    atomicAdd(&grp_hi[i], v.y + carry);
  }
}

// Which cutoffs x passes, as one vec4: bit 0 of lane c for CUT[c], bit 16 for CUT[c + 4].
fn cut_flags(x: f32, inside: bool) -> vec4<u32> {
  let ok = vec4<bool>(inside && x >= X_MIN);
  let lo = select(vec4<u32>(0u), vec4<u32>(1u), vec4<f32>(x) >= -CUT_LO & ok);
  let hi = select(vec4<u32>(0u), vec4<u32>(0x10000u), vec4<f32>(x) >= -CUT_HI & ok);
  return lo | hi;
}

// The level of a token (first cutoff it passes, NCUT if none) from its cut_flags.
fn level_of(u: vec4<u32>) -> u32 {
  let n = dot(u, vec4<u32>(1u));
  return NCUT - (n & 0xffffu) - (n >> 16u);
}

fn stats_at(j: u32, blk: u32) -> u32 {
  return OFF_STATS + (j * NBLOCKS + blk) * STATS_WORDS;
}

// Bit q set when token first + q (< end) has level <= c.
fn level_mask(word: u32, c: u32, first: u32, end: u32) -> u32 {
  var bits = 0u;
  for (var q = 0u; q < 8u; q++) {
    let ok = ((word >> (q * 4u)) & 15u) <= c && first + q < end;
    bits |= select(0u, 1u << q, ok);
  }
  return bits;
}

// words of cutoff levels per invocation: 8 tokens per word
override LEVEL_WORDS: u32 = (SUB + 7u) / 8u;

fn levels_at(j: u32, blk: u32, t: u32) -> u32 {
  return OFF_LEVELS + ((j * NBLOCKS + blk) * WG + t) * LEVEL_WORDS;
}

fn info_at(j: u32) -> u32 {
  return j * 16u;
}

fn cand_at(j: u32) -> u32 {
  return OFF_CAND + j * VOCAB * 2u;
}

// Exclusive prefix sum over the workgroup of one u32 per invocation (uniform control flow only).
fn excl_scan(t: u32, v: u32) -> u32 {
  sa[t] = v;
  workgroupBarrier();
  if (t < 16u) {
    var s = 0u;
    for (var q = 0u; q < 16u; q++) {
      s += sa[t * 16u + q];
    }
    sb[t] = s;
  }
  workgroupBarrier();
  var pre = 0u;
  for (var g = 0u; g < t / 16u; g++) {
    pre += sb[g];
  }
  for (var q = t & ~15u; q < t; q++) {
    pre += sa[q];
  }
  workgroupBarrier();
  return pre;
}

// ---------------------------------------------------------------------------------------------
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

// Every invocation's (key, index) combined into best_pair: the largest key, the lowest index holding it
// (index NONE: the invocation had none).
fn group_best(t: u32, k: u32, i: u32) {
  if (t == 0u) {
    atomicStore(&best_pair[0], 0u);
    atomicStore(&best_pair[1], NONE);
  }
  workgroupBarrier();
  if (i != NONE) {
    atomicMax(&best_pair[0], k);
  }
  workgroupBarrier();
  if (i != NONE && k == atomicLoad(&best_pair[0])) {
    atomicMin(&best_pair[1], i);
  }
  workgroupBarrier();
}

// ---------------------------------------------------------------------------------------------
// PASS 1: row max; greedy rows are finished here. Sampling rows: cutoff statistics per block.

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

fn pass_stats(t: u32, blk: u32, j: u32) {
  let sp = sample_params[j];
  if (HEAD_PARTS > 0u) {
    head_max(t);
  }
  atomicStore(&hist_c[t], 0u);
  atomicStore(&hist_lo[t], 0u);
  atomicStore(&hist_hi[t], 0u);
  if (t == 0u) {
    var bk = 0u;
    var bi = NONE;
    if (HEAD_PARTS > 0u) {
      bk = atomicLoad(&best_pair[0]);
      bi = atomicLoad(&best_pair[1]);
    } else {
      let p = OFF_PART + j * NBLOCKS * 2u;
      for (var q = 0u; q < NBLOCKS; q++) {
        let k = work[p + q * 2u];
        let i = work[p + q * 2u + 1u];
        if (i != NONE && (bi == NONE || k > bk)) {
          bk = k;
          bi = i;
        }
      }
    }
    let greedy = !(sp.temperature > 0.0);
    sh.mode = select(1u, 0u, greedy);
    sf = key2f(bk);
    if (blk == 0u) {
      let info = info_at(j);
      work[info] = sh.mode;
      work[info + 1u] = bitcast<u32>(sf);
      work[info + 2u] = bi;
      if (greedy) {
        tokens[j] = bi;
        result[j * RESULT_STRIDE] = bi;
      }
    }
  }
  let s = workgroupUniformLoad(&sh);
  if (s.mode == 0u) {
    return;
  }
  let m = sf;
  let inv_t = inv_temp(sp.temperature);
  let vocab = VOCAB;
  let base = j * vocab;
  let blo = blk * CHUNK;
  let bhi = min(blo + CHUNK, vocab);
  let lo = min(blo + t * SUB, bhi);
  let hi = min(lo + SUB, bhi);
  // Per cutoff: counts (two 16-bit halves per word: cutoffs c and c + 4), and, only to place the
  // top-p nucleus when top-k is off, lower bounds of the masses (sums of w >> 8) and the exact
  // total. Two loops rather than one with a branch: fewer live registers in the common one.
  let need_mass = sp.top_k == 0u && top_p24(sp.top_p) < P_ONE;
  let lw = levels_at(j, blk, t);
  let nw = (hi - lo + 7u) / 8u;
  var cnt = vec4<u32>(0u);
  var ms0 = vec4<u32>(0u);
  var ms1 = vec4<u32>(0u);
  var total = vec2<u32>(0u);
  if (need_mass) {
    for (var w = 0u; w < nw; w++) {
      var word = 0u;
      for (var q = 0u; q < 8u; q++) {
        let i = lo + w * 8u + q;
        let x = (logits[base + min(i, hi - 1u)] - m) * inv_t;
        let u = cut_flags(x, i < hi);
        cnt += u;
        word |= level_of(u) << (q * 4u);
        let wt = select(0u, weight(x), i < hi);
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
        let i = lo + w * 8u + q;
        let u = cut_flags((logits[base + min(i, hi - 1u)] - m) * inv_t, i < hi);
        cnt += u;
        word |= level_of(u) << (q * 4u);
      }
      work[lw + w] = word;
    }
  }
  for (var c = 0u; c < 4u; c++) {
    if ((cnt[c] & 0xffffu) != 0u) {
      atomicAdd(&hist_c[c], cnt[c] & 0xffffu);
    }
    if ((cnt[c] >> 16u) != 0u) {
      atomicAdd(&hist_c[4u + c], cnt[c] >> 16u);
    }
    atomic_add64(c, vec2<u32>(ms0[c], 0u));
    atomic_add64(4u + c, vec2<u32>(ms1[c], 0u));
  }
  atomic_add64(NCUT, total);
  workgroupBarrier();
  if (t <= NCUT) {
    let st = stats_at(j, blk) + t * 3u;
    work[st] = atomicLoad(&hist_c[t]);
    work[st + 1u] = atomicLoad(&hist_lo[t]);
    work[st + 2u] = atomicLoad(&hist_hi[t]);
  }
}

// ---------------------------------------------------------------------------------------------
// PASS 2: choose the candidate cutoff c*, then copy the block's candidates in index order.

fn pass_compact(t: u32, blk: u32, j: u32) {
  let info = info_at(j);
  let sp = sample_params[j];
  if (t == 0u) {
    sh.mode = work[info];
  }
  let s0 = workgroupUniformLoad(&sh);
  if (s0.mode == 0u) {
    return;
  }
  let nb = NBLOCKS;
  if (t <= NCUT) {
    var cnt = 0u;
    var mass = vec2<u32>(0u);
    for (var q = 0u; q < nb; q++) {
      let st = stats_at(j, q) + t * 3u;
      cnt += work[st];
      mass = add64(mass, vec2<u32>(work[st + 1u], work[st + 2u]));
    }
    sa[t] = cnt;
    sa[16u + t] = mass.x;
    sa[32u + t] = mass.y;
  }
  workgroupBarrier();
  if (t == 0u) {
    let k = sp.top_k;
    let p24 = top_p24(sp.top_p);
    let total = vec2<u32>(sa[16u + NCUT], sa[32u + NCUT]);
    var cstar = NCUT - 1u;
    var kact = 0u;
    if (k > 0u && sa[NCUT - 1u] >= k) {
      // top-k: the smallest cutoff with at least k tokens holds every token top-k keeps
      kact = 1u;
      for (var c = NCUT - 1u; c > 0u; c--) {
        if (sa[c - 1u] >= k) {
          cstar = c - 1u;
        }
      }
    } else if (k == 0u && p24 < P_ONE) {
      // top-p alone: a cutoff whose mass (bound below by 256 * the sum of w >> 8) reaches the
      // goal holds the nucleus; the last cutoff holds every token of nonzero weight
      let goal = max64(mul_shift24(p24, total, true), vec2<u32>(1u, 0u));
      for (var c = NCUT - 1u; c > 0u; c--) {
        let b = vec2<u32>(sa[16u + c - 1u], sa[32u + c - 1u]);
        if (ge64(vec2<u32>(b.x << 8u, (b.y << 8u) | (b.x >> 24u)), goal)) {
          cstar = c - 1u;
        }
      }
    }
    var off = 0u;
    for (var q = 0u; q < blk; q++) {
      off += work[stats_at(j, q) + cstar * 3u];
    }
    sh.a = cstar;
    sh.n = off;
    if (blk == 0u) {
      work[info + 3u] = cstar;
      work[info + 4u] = sa[cstar];
      work[info + 5u] = kact;
      work[info + 6u] = total.x;
      work[info + 7u] = total.y;
    }
  }
  let s = workgroupUniformLoad(&sh);
  let cstar = s.a;
  let vocab = VOCAB;
  let base = j * vocab;
  let cb = cand_at(j);
  let blo = blk * CHUNK;
  let bhi = min(blo + CHUNK, vocab);
  let lo = min(blo + t * SUB, bhi);
  let hi = min(lo + SUB, bhi);
  let lw = levels_at(j, blk, t);
  let nw = (hi - lo + 7u) / 8u;
  var cnt = 0u;
  for (var w = 0u; w < nw; w++) {
    cnt += countOneBits(level_mask(work[lw + w], cstar, lo + w * 8u, hi));
  }
  if (t == 0u) {
    atomicStore(&hist_c[0], NONE);
  }
  var pos = s.n + excl_scan(t, cnt);
  var kmin = NONE;
  for (var w = 0u; w < nw; w++) {
    var bits = level_mask(work[lw + w], cstar, lo + w * 8u, hi);
    // a loop, not an `if`: CPU drivers run both sides of a divergent `if` with lanes masked off
    while (bits != 0u) {
      let i = lo + w * 8u + countTrailingZeros(bits);
      bits &= bits - 1u;
      let l = logits[base + i];
      work[cb + pos * 2u] = i;
      work[cb + pos * 2u + 1u] = bitcast<u32>(l);
      pos++;
      kmin = min(kmin, f2key(l));
    }
  }
  // the lowest candidate key of the block replaces its max key in `part` (PASS 3 reads it)
  if (kmin != NONE) {
    atomicMin(&hist_c[0], kmin);
  }
  workgroupBarrier();
  if (t == 0u) {
    work[OFF_PART + (j * NBLOCKS + blk) * 2u] = atomicLoad(&hist_c[0]);
  }
}

// ---------------------------------------------------------------------------------------------
// PASS 3: thresholds and the draw, over the candidates of one row (one workgroup per row).
//
// A threshold is a radix select over d = key - base (base = the lowest key allowed), 8 bits per
// round from the top bit of (top key - base), so the first round already spreads the candidates
// over the buckets. Each round histograms the matching candidates into one of two bucket sets (the
// other is cleared meanwhile) and into 16 group counters, and invocation 0 walks down from the top
// group. Workgroup atomics are slow on CPU drivers, so the walk reads ~32 counters, not all 256.

// Largest threshold key tau >= base such that the candidates with key >= tau count at least
// rank.x (by_mass = false) or weigh at least rank (by_mass = true).
fn radix_select(t: u32, j: u32, n: u32, base: u32, top: u32, m: f32, inv_t: f32, by_mass: bool, rank: vec2<u32>) -> u32 {
  let cb = cand_at(j);
  workgroupBarrier();
  atomicStore(&hist_c[t], 0u);
  atomicStore(&hist_lo[t], 0u);
  atomicStore(&hist_hi[t], 0u);
  atomicStore(&hist_c[WG + t], 0u);
  atomicStore(&hist_lo[WG + t], 0u);
  atomicStore(&hist_hi[WG + t], 0u);
  if (t < 32u) {
    atomicStore(&grp_c[t], 0u);
    atomicStore(&grp_lo[t], 0u);
    atomicStore(&grp_hi[t], 0u);
  }
  if (t == 0u) {
    let range = top - base;
    let bits = select(32u - countLeadingZeros(range), 0u, range == 0u);
    rs.rounds = max(1u, (bits + 7u) / 8u);
    rs.round = 0u;
    rs.prefix = 0u;
    rs.rem = rank;
  }
  loop {
    let st = workgroupUniformLoad(&rs);
    if (st.round == st.rounds) {
      break;
    }
    let shift = 8u * (st.rounds - 1u - st.round);
    let first = st.round == 0u;
    let bset = (st.round & 1u) * WG;
    let gset = (st.round & 1u) * 16u;
    atomicStore(&hist_c[WG - bset + t], 0u);
    atomicStore(&hist_lo[WG - bset + t], 0u);
    atomicStore(&hist_hi[WG - bset + t], 0u);
    if (t < 16u) {
      atomicStore(&grp_c[16u - gset + t], 0u);
      atomicStore(&grp_lo[16u - gset + t], 0u);
      atomicStore(&grp_hi[16u - gset + t], 0u);
    }
    for (var i = t; i < n; i += WG) {
      let l = bitcast<f32>(work[cb + i * 2u + 1u]);
      let k = f2key(l);
      let d = k - base;
      // a loop that runs at most once, not an `if` (see PASS 2)
      var hit = k >= base && (first || (d >> (shift + 8u)) == st.prefix);
      while (hit) {
        hit = false;
        let b = (d >> shift) & 0xffu;
        if (by_mass) {
          let w = vec2<u32>(weight((l - m) * inv_t), 0u);
          atomic_add64(bset + b, w);
          group_add64(gset + (b >> 4u), w);
        } else {
          atomicAdd(&hist_c[bset + b], 1u);
          atomicAdd(&grp_c[gset + (b >> 4u)], 1u);
        }
      }
    }
    workgroupBarrier();
    if (t == 0u) {
      let rem = st.rem;
      var cum = vec2<u32>(0u);
      var g = 15u;
      loop {
        var h = vec2<u32>(atomicLoad(&grp_c[gset + g]), 0u);
        if (by_mass) {
          h = vec2<u32>(atomicLoad(&grp_lo[gset + g]), atomicLoad(&grp_hi[gset + g]));
        }
        let next = add64(cum, h);
        if (g == 0u || ge64(next, rem)) {
          break;
        }
        cum = next;
        g--;
      }
      var b = g * 16u + 15u;
      loop {
        var h = vec2<u32>(atomicLoad(&hist_c[bset + b]), 0u);
        if (by_mass) {
          h = vec2<u32>(atomicLoad(&hist_lo[bset + b]), atomicLoad(&hist_hi[bset + b]));
        }
        let next = add64(cum, h);
        if (b == g * 16u || ge64(next, rem)) {
          break;
        }
        cum = next;
        b--;
      }
      rs.rem = sub64(rem, cum);
      rs.prefix = (st.prefix << 8u) | b;
      rs.round = st.round + 1u;
    }
  }
  return base + rs.prefix;
}

// Each invocation's 64-bit v into sa / sb (lo / hi), and the sums of the 16 groups of 16 invocations into
// sg_lo / sg_hi (uniform control flow only).
fn group_sums64(t: u32, v: vec2<u32>) {
  sa[t] = v.x;
  sb[t] = v.y;
  workgroupBarrier();
  if (t < 16u) {
    var g = vec2<u32>(0u);
    for (var q = 0u; q < 16u; q++) {
      g = add64(g, vec2<u32>(sa[t * 16u + q], sb[t * 16u + q]));
    }
    sg_lo[t] = g.x;
    sg_hi[t] = g.y;
  }
  workgroupBarrier();
}

// Total weight of the candidates with key >= tau (plain per-invocation sums, then 16 groups).
fn kept_mass(t: u32, j: u32, n: u32, tau: u32, m: f32, inv_t: f32) -> vec2<u32> {
  let cb = cand_at(j);
  var acc = vec2<u32>(0u);
  for (var i = t; i < n; i += WG) {
    let l = bitcast<f32>(work[cb + i * 2u + 1u]);
    if (f2key(l) >= tau) {
      acc = add64(acc, vec2<u32>(weight((l - m) * inv_t), 0u));
    }
  }
  group_sums64(t, acc);
  if (t == 0u) {
    var tot = vec2<u32>(0u);
    for (var g = 0u; g < 16u; g++) {
      tot = add64(tot, vec2<u32>(sg_lo[g], sg_hi[g]));
    }
    rs.rem = tot;
  }
  return workgroupUniformLoad(&rs).rem;
}

fn pass_select(t: u32, j: u32) {
  let info = info_at(j);
  let sp = sample_params[j];
  if (t == 0u) {
    sh.mode = work[info];
    sh.n = work[info + 4u];
    sh.kact = work[info + 5u];
    sh.k = sp.top_k;
    sh.p24 = top_p24(sp.top_p);
    var kmin = NONE;
    for (var q = 0u; q < NBLOCKS; q++) {
      kmin = min(kmin, work[OFF_PART + (j * NBLOCKS + q) * 2u]);
    }
    sh.a = kmin;
  }
  let s = workgroupUniformLoad(&sh);
  if (s.mode == 0u) {
    return;
  }
  let n = s.n;
  let m = bitcast<f32>(work[info + 1u]);
  let top = f2key(m);
  let inv_t = inv_temp(sp.temperature);
  let cb = cand_at(j);

  // top-k threshold and the mass it keeps
  var tau = 0u;
  var mk = vec2<u32>(work[info + 6u], work[info + 7u]);
  if (s.kact != 0u) {
    tau = radix_select(t, j, n, s.a, top, m, inv_t, false, vec2<u32>(sp.top_k, 0u));
  }
  // top_k > 0: the candidates hold the whole top-k set (all tokens of nonzero weight when top_k
  // exceeds their number), so M_k is summed here; top_k = 0: PASS 1 summed the whole row
  if (s.k != 0u && s.p24 < P_ONE) {
    mk = kept_mass(t, j, n, tau, m, inv_t);
  }
  // top-p threshold within the top-k set
  if (s.p24 < P_ONE) {
    let goal = max64(mul_shift24(s.p24, mk, true), vec2<u32>(1u, 0u));
    tau = radix_select(t, j, n, max(tau, s.a), top, m, inv_t, true, goal);
  }

  // kept mass per invocation over a contiguous range of candidates, in index order
  let per = (n + WG - 1u) / WG;
  let lo = min(t * per, n);
  let hi = min(lo + per, n);
  var own = vec2<u32>(0u);
  for (var i = lo; i < hi; i++) {
    let l = bitcast<f32>(work[cb + i * 2u + 1u]);
    if (f2key(l) >= tau) {
      own = add64(own, vec2<u32>(weight((l - m) * inv_t), 0u));
    }
  }
  workgroupBarrier();
  group_sums64(t, own);
  if (t == 0u) {
    // exclusive prefix over the 16 groups, the total, and the draw
    var cum = vec2<u32>(0u);
    for (var g = 0u; g < 16u; g++) {
      let v = vec2<u32>(sg_lo[g], sg_hi[g]);
      sg_lo[g] = cum.x;
      sg_hi[g] = cum.y;
      cum = add64(cum, v);
    }
    let r = pcg(sp.seed ^ pcg(positions[j])) >> 8u;
    rs.rem = mul_shift24(r, cum, false);
    if (cum.x == 0u && cum.y == 0u) {
      let id = work[info + 2u];
      tokens[j] = id;
      result[j * RESULT_STRIDE] = id;
    }
  }
  workgroupBarrier();
  let goal = rs.rem;
  var pre = vec2<u32>(sg_lo[t / 16u], sg_hi[t / 16u]);
  for (var q = t & ~15u; q < t; q++) {
    pre = add64(pre, vec2<u32>(sa[q], sb[q]));
  }
  if (ge64(goal, pre) && gt64(add64(pre, own), goal)) {
    var cum = pre;
    for (var i = lo; i < hi; i++) {
      let l = bitcast<f32>(work[cb + i * 2u + 1u]);
      if (f2key(l) >= tau) {
        cum = add64(cum, vec2<u32>(weight((l - m) * inv_t), 0u));
        if (gt64(cum, goal)) {
          let id = work[cb + i * 2u];
          tokens[j] = id;
          result[j * RESULT_STRIDE] = id;
          break;
        }
      }
    }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  switch PASS {
    case 0u: {
      pass_max(t, wid.x, wid.y);
    }
    case 1u: {
      pass_stats(t, wid.x, wid.y);
    }
    case 2u: {
      pass_compact(t, wid.x, wid.y);
    }
    default: {
      pass_select(t, wid.y);
    }
  }
}
