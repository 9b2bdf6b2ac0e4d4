// What the passes of `sample` share: bindings, sizes, the workgroup state, the weight of a logit, the
// layout of the scratch buffer `work`, the cutoff levels, and workgroup-wide scans and maxima.

//! use lib/sort_key.wgsl
//! use lib/u64.wgsl

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

// Invocation t's slice [x, y) of block blk of a row (SUB tokens; the last ones may be short or empty).
fn own_range(t: u32, blk: u32) -> vec2<u32> {
  let blo = blk * CHUNK;
  let bhi = min(blo + CHUNK, VOCAB);
  let lo = min(blo + t * SUB, bhi);
  return vec2<u32>(lo, min(lo + SUB, bhi));
}

// Row j's token: for the next step's embedding gather and for the host.
fn emit_token(j: u32, id: u32) {
  tokens[j] = id;
  result[j * RESULT_STRIDE] = id;
}
