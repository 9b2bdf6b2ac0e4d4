// Unsigned 64-bit integers as (lo, hi) pairs of u32, for exact sums of integer weights (`sample`).

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
