// PASS 2 of `sample`: choose the candidate cutoff c*, then copy each block's candidates in index order.

// The row's statistics summed over its blocks into sa, per cutoff c <= NCUT (NCUT: the total mass):
// count at c, mass bound lo at 16 + c, hi at 32 + c.
fn row_stats(t: u32, j: u32) {
  if (t <= NCUT) {
    var cnt = 0u;
    var mass = vec2<u32>(0u);
    for (var q = 0u; q < NBLOCKS; q++) {
      let st = stats_at(j, q) + t * 3u;
      cnt += work[st];
      mass = add64(mass, vec2<u32>(work[st + 1u], work[st + 2u]));
    }
    sa[t] = cnt;
    sa[16u + t] = mass.x;
    sa[32u + t] = mass.y;
  }
  workgroupBarrier();
}

// The smallest cutoff c* whose tokens surely hold everything top-k / top-p keep (row_stats in sa, total
// the row's mass), and whether top-k is active: (c*, active).
fn choose_cutoff(sp: SampleParams, total: vec2<u32>) -> vec2<u32> {
  let k = sp.top_k;
  let p24 = top_p24(sp.top_p);
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
  return vec2<u32>(cstar, kact);
}

// Invocation 0: c* into sh.a and where the block's candidates start in the row's list into sh.n; block 0
// records c*, the candidate count, top-k's state and the total mass in the row's info.
fn place_block(blk: u32, j: u32, sp: SampleParams) {
  let total = vec2<u32>(sa[16u + NCUT], sa[32u + NCUT]);
  let choice = choose_cutoff(sp, total);
  let cstar = choice.x;
  var off = 0u;
  for (var q = 0u; q < blk; q++) {
    off += work[stats_at(j, q) + cstar * 3u];
  }
  sh.a = cstar;
  sh.n = off;
  if (blk == 0u) {
    let info = info_at(j);
    work[info + 3u] = cstar;
    work[info + 4u] = sa[cstar];
    work[info + 5u] = choice.y;
    work[info + 6u] = total.x;
    work[info + 7u] = total.y;
  }
}

// The block's candidates (level <= c*) to the row's list from position `start`, each invocation's in
// index order after the lower invocations'; the lowest candidate key of the block replaces its max key in
// `part` (PASS 3 reads it).
fn copy_candidates(t: u32, blk: u32, j: u32, cstar: u32, start: u32) {
  let base = j * VOCAB;
  let cb = cand_at(j);
  let r = own_range(t, blk);
  let lw = levels_at(j, blk, t);
  let nw = (r.y - r.x + 7u) / 8u;
  var cnt = 0u;
  for (var w = 0u; w < nw; w++) {
    cnt += countOneBits(level_mask(work[lw + w], cstar, r.x + w * 8u, r.y));
  }
  if (t == 0u) {
    atomicStore(&hist_c[0], NONE);
  }
  var pos = start + excl_scan(t, cnt);
  var kmin = NONE;
  for (var w = 0u; w < nw; w++) {
    var bits = level_mask(work[lw + w], cstar, r.x + w * 8u, r.y);
    // a loop, not an `if`: CPU drivers run both sides of a divergent `if` with lanes masked off
    while (bits != 0u) {
      let i = r.x + w * 8u + countTrailingZeros(bits);
      bits &= bits - 1u;
      let l = logits[base + i];
      work[cb + pos * 2u] = i;
      work[cb + pos * 2u + 1u] = bitcast<u32>(l);
      pos++;
      kmin = min(kmin, f2key(l));
    }
  }
  if (kmin != NONE) {
    atomicMin(&hist_c[0], kmin);
  }
  workgroupBarrier();
  if (t == 0u) {
    work[OFF_PART + (j * NBLOCKS + blk) * 2u] = atomicLoad(&hist_c[0]);
  }
}

fn pass_compact(t: u32, blk: u32, j: u32) {
  if (t == 0u) {
    sh.mode = work[info_at(j)];
  }
  let s0 = workgroupUniformLoad(&sh);
  if (s0.mode == 0u) {
    return;
  }
  row_stats(t, j);
  if (t == 0u) {
    place_block(blk, j, sample_params[j]);
  }
  let s = workgroupUniformLoad(&sh);
  copy_candidates(t, blk, j, s.a, s.n);
}
