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
//
// The passes live in lib/sample_stats.wgsl (0, 1), lib/sample_compact.wgsl (2), lib/sample_select.wgsl and
// lib/sample_draw.wgsl (3); what they share in lib/sample_common.wgsl.

//! use lib/sample_common.wgsl
//! use lib/sample_stats.wgsl
//! use lib/sample_compact.wgsl
//! use lib/sample_select.wgsl
//! use lib/sample_draw.wgsl

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
