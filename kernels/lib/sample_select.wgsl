// PASS 3 of `sample`: thresholds and the draw, over the candidates of one row (one workgroup per row).
//
// A threshold is a radix select over d = key - base (base = the lowest key allowed), 8 bits per
// round from the top bit of (top key - base), so the first round already spreads the candidates
// over the buckets. Each round histograms the matching candidates into one of two bucket sets (the
// other is cleared meanwhile) and into 16 group counters, and invocation 0 walks down from the top
// group. Workgroup atomics are slow on CPU drivers, so the walk reads ~32 counters, not all 256.

// Both bucket and group sets cleared, and the rounds set up by invocation 0 for a select of `rank` over
// keys base ..= top.
fn radix_start(t: u32, base: u32, top: u32, rank: vec2<u32>) {
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
}

// Round st's histogram: the candidates whose d matches the prefix above this round's byte, counted (or
// weighed, by_mass) into the round's bucket and group sets; the other sets cleared for the next round.
fn radix_histogram(t: u32, j: u32, n: u32, base: u32, st: Rounds, m: f32, inv_t: f32, by_mass: bool) {
  let cb = cand_at(j);
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
}

// Bucket b's count, or its mass by_mass.
fn bucket_sum(b: u32, by_mass: bool) -> vec2<u32> {
  if (by_mass) {
    return vec2<u32>(atomicLoad(&hist_lo[b]), atomicLoad(&hist_hi[b]));
  }
  return vec2<u32>(atomicLoad(&hist_c[b]), 0u);
}

// Group counter g's count, or its mass by_mass.
fn group_sum(g: u32, by_mass: bool) -> vec2<u32> {
  if (by_mass) {
    return vec2<u32>(atomicLoad(&grp_lo[g]), atomicLoad(&grp_hi[g]));
  }
  return vec2<u32>(atomicLoad(&grp_c[g]), 0u);
}

// Invocation 0, after round st's histogram: from the top group down, then that group's buckets down, to
// the bucket where the remaining rank is reached; its byte extends the prefix, and the rank left over
// is what the next round looks for.
fn radix_walk(st: Rounds, by_mass: bool) {
  let bset = (st.round & 1u) * WG;
  let gset = (st.round & 1u) * 16u;
  let rem = st.rem;
  var cum = vec2<u32>(0u);
  var g = 15u;
  loop {
    let next = add64(cum, group_sum(gset + g, by_mass));
    if (g == 0u || ge64(next, rem)) {
      break;
    }
    cum = next;
    g--;
  }
  var b = g * 16u + 15u;
  loop {
    let next = add64(cum, bucket_sum(bset + b, by_mass));
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

// Largest threshold key tau >= base such that the candidates with key >= tau count at least
// rank.x (by_mass = false) or weigh at least rank (by_mass = true).
fn radix_select(
  t: u32,
  j: u32,
  n: u32,
  base: u32,
  top: u32,
  m: f32,
  inv_t: f32,
  by_mass: bool,
  rank: vec2<u32>,
) -> u32 {
  workgroupBarrier();
  radix_start(t, base, top, rank);
  loop {
    let st = workgroupUniformLoad(&rs);
    if (st.round == st.rounds) {
      break;
    }
    radix_histogram(t, j, n, base, st, m, inv_t, by_mass);
    workgroupBarrier();
    if (t == 0u) {
      radix_walk(st, by_mass);
    }
  }
  return base + rs.prefix;
}
