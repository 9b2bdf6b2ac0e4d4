// PASS 3 of `sample`, after the candidates: the row's thresholds (lib/sample_select.wgsl) and the draw, a
// prefix scan of the kept mass in index order.

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

// Invocation 0: what PASS 3 needs of row j into sh: its mode, candidate count, whether top-k is active, k,
// P, and the lowest candidate key (sh.a).
fn select_state(j: u32, sp: SampleParams) {
  let info = info_at(j);
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

// The lowest key kept: top-k's threshold, then top-p's within the top-k set (0: all).
fn threshold(t: u32, j: u32, s: Shared, sp: SampleParams, m: f32, inv_t: f32) -> u32 {
  let info = info_at(j);
  let top = f2key(m);
  var tau = 0u;
  var mk = vec2<u32>(work[info + 6u], work[info + 7u]);
  if (s.kact != 0u) {
    tau = radix_select(t, j, s.n, s.a, top, m, inv_t, false, vec2<u32>(sp.top_k, 0u));
  }
  // top_k > 0: the candidates hold the whole top-k set (all tokens of nonzero weight when top_k
  // exceeds their number), so M_k is summed here; top_k = 0: PASS 1 summed the whole row
  if (s.k != 0u && s.p24 < P_ONE) {
    mk = kept_mass(t, j, s.n, tau, m, inv_t);
  }
  if (s.p24 < P_ONE) {
    let goal = max64(mul_shift24(s.p24, mk, true), vec2<u32>(1u, 0u));
    tau = radix_select(t, j, s.n, max(tau, s.a), top, m, inv_t, true, goal);
  }
  return tau;
}

// The kept mass of candidates r.x .. r.y - 1 added to `start` in index order: the
// first candidate where it passes `goal` is emitted as the token.
fn scan_range(j: u32, r: vec2<u32>, start: vec2<u32>, goal: vec2<u32>, tau: u32, m: f32, inv_t: f32) {
  let cb = cand_at(j);
  var cum = start;
  for (var i = r.x; i < r.y; i++) {
    let l = bitcast<f32>(work[cb + i * 2u + 1u]);
    if (f2key(l) >= tau) {
      cum = add64(cum, vec2<u32>(weight((l - m) * inv_t), 0u));
      if (gt64(cum, goal)) {
        emit_token(j, work[cb + i * 2u]);
        break;
      }
    }
  }
}

// Invocation 0, with each group of 16 invocations' kept mass in sg_lo / sg_hi: those become exclusive
// prefixes, and the draw's target (r · M / 2^24 of the total M) goes to rs.rem. No mass at all (every
// logit -inf): the argmax.
fn draw_target(j: u32, sp: SampleParams) {
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
    emit_token(j, work[info_at(j) + 2u]);
  }
}

// The draw: each invocation sums the kept mass of a contiguous range of the n candidates; a prefix over
// the invocations finds the one whose range holds the target, and it scans its range for the token.
fn draw(t: u32, j: u32, n: u32, tau: u32, sp: SampleParams, m: f32, inv_t: f32) {
  let per = (n + WG - 1u) / WG;
  let lo = min(t * per, n);
  let r = vec2<u32>(lo, min(lo + per, n));
  let own = kept_mass_of(j, r, tau, m, inv_t);
  workgroupBarrier();
  group_sums64(t, own);
  if (t == 0u) {
    draw_target(j, sp);
  }
  workgroupBarrier();
  let goal = rs.rem;
  var pre = vec2<u32>(sg_lo[t / 16u], sg_hi[t / 16u]);
  for (var q = t & ~15u; q < t; q++) {
    pre = add64(pre, vec2<u32>(sa[q], sb[q]));
  }
  if (ge64(goal, pre) && gt64(add64(pre, own), goal)) {
    scan_range(j, r, pre, goal, tau, m, inv_t);
  }
}

// The kept mass of candidates r.x .. r.y - 1.
fn kept_mass_of(j: u32, r: vec2<u32>, tau: u32, m: f32, inv_t: f32) -> vec2<u32> {
  let cb = cand_at(j);
  var own = vec2<u32>(0u);
  for (var i = r.x; i < r.y; i++) {
    let l = bitcast<f32>(work[cb + i * 2u + 1u]);
    if (f2key(l) >= tau) {
      own = add64(own, vec2<u32>(weight((l - m) * inv_t), 0u));
    }
  }
  return own;
}

fn pass_select(t: u32, j: u32) {
  let sp = sample_params[j];
  if (t == 0u) {
    select_state(j, sp);
  }
  let s = workgroupUniformLoad(&sh);
  if (s.mode == 0u) {
    return;
  }
  let m = bitcast<f32>(work[info_at(j) + 1u]);
  let inv_t = inv_temp(sp.temperature);
  draw(t, j, s.n, threshold(t, j, s, sp, m, inv_t), sp, m, inv_t);
}
