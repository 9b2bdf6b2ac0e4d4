// The decode GEMV on CPU software GPUs (llvmpipe / lavapipe): ONE activation row × a matrix in a read-only
// rgba32uint storage texture laid out as lib/weights_texture.wgsl says (rows padded to 16 bytes, each group of
// 4 rows interleaving its rows' 16-byte blocks), x and the RMSNorm weights read through 64 KiB uniform windows:
//   y[out_offset + m] (+)= alpha · s · Σ_k norm(x)[k] · W[m, k]      for m < params.rows
// with s = 1, row_scale[0] or 1 − row_scale[0] and norm(x) = x · g / RMS(x) under NORM.
//
// Why a kernel of its own: llvmpipe (Mesa 22.3) runs both sides of every branch under a lane mask, and only
// loops stop when no lane is left. In gemm_tex.wgsl a one-row step paid for the multi-row path's code on every
// group of rows; here the work is straight-line code in a group loop whose trip count is the same on every
// lane. For the same reason x past K is zeroed by a select (the rows' zero padding then replaces a tail loop),
// the row scale and accumulate flags are applied without branches, and NORM is a pipeline constant (without
// it no norm weights are read). The epilogue — plain store, SWIGLU or ROPE, as gemm_tex.wgsl — follows the
// flags: as a pipeline constant it measured no faster, and fewer pipelines keep lavapipe's cache of compiled
// variants small (kernels/README.md).
//
// Bindings: 0 params (MatmulParams as gemm_tex.wgsl, but through a storage binding; flags: bit 0 accumulate,
// bits 1-2 row scale, bit 5 SWIGLU, bit 6 ROPE), 1 step (n_rows 0 or 1), 2 x_uni (x's first 16384 floats; any
// window under XTEX), 3 w (one part of the matrix), 4 y, 5 row_scale, 6 norm_uni (the norm weights' first
// 16384 floats; any window without NORM), 7 rows, 8 cos_sin, 9 k_cache, 10 v_cache (ROPE,
// lib/matmul_rope.wgsl), 11 x_tex (x's row as texels of 4 floats under XTEX; any rgba32float texture
// otherwise), 12 best (ARGMAX; any storage buffer otherwise), 13 xq (XQ: x quantized by quantize_x.wgsl; any
// rgba32uint texture otherwise). Needs K ≤ 16384. Weight format: override W_DTYPE
// (lib/weight_decode.wgsl).
// Grid: x = ceil(M / (4 · WG · groups)) (wrapping into z beyond 65535).

requires readonly_and_readwrite_storage_textures;

//! use lib/gemv_tex_io.wgsl
//! use lib/gemv_tex_store.wgsl
//! use lib/sort_key.wgsl

override WG: u32 = 8u;
// RMSNorm on the input (flag bit 4 in gemm_tex.wgsl). A pipeline constant here: a matmul without it then reads
// no norm weights at all (branches cost both sides on llvmpipe), and the demo model decoded ~20% faster.
override NORM: bool = false;
// x from binding 11, an rgba32float texture holding x's row (rmsnorm.wgsl writes one, already normalized when
// the matmul has a norm: the host then leaves NORM off), instead of the uniform window. llvmpipe loads a
// uniform at an index it cannot prove constant lane by lane, a texel with one 16-byte load per lane: the demo's
// LM head (128256 × 128) alone ran 2.6–3.1 ms instead of 3.6–5.3 (kernels/README.md).
override XTEX: bool = false;
// The LM head of a one-row step: each invocation also leaves the (key, index) of its largest output in
// `best` (binding 12, pair params.best_base + invocation), keys and ties as sample.wgsl, whose first pass then
// need not read the logits again. Plain store only (no accumulate, SWIGLU or ROPE: the host checks).
override ARGMAX: bool = false;

// q8 and q4 weights against x quantized to int8 blocks by quantize_x.wgsl (binding 13; NORM and XTEX then off,
// the quantizer having read x through them): integer sums, two weight-by-x products per 32-bit multiply
// (`pairs`, `q8pairs`), each row's scales read once per 8 blocks. On lavapipe q4 GEMVs ran ~2.2–2.5× and q8
// ~1.6× faster than the float path (kernels/README.md), which decodes each weight to a float and multiplies
// it by x's float.
override XQ: bool = false;

@group(0) @binding(11) var x_tex: texture_storage_2d<rgba32float, read>;
@group(0) @binding(12) var<storage, read_write> best: array<u32>;
@group(0) @binding(13) var xq: texture_storage_2d<rgba32uint, read>;

// x elements k .. k + 3 (k a multiple of 4), unmasked.
fn x4(k: u32) -> vec4<f32> {
  if (XTEX) {
    return textureLoad(x_tex, vec2<u32>(k >> 2u, 0u));
  }
  return x_uni[k >> 2u];
}

// norm(x) elements k .. k + 3 (k a multiple of 4) before 1 / RMS; zero past K.
fn xg4(k: u32) -> vec4<f32> {
  let inside = inside4(k);
  var v = x4(k);
  if (NORM) {
    v *= norm_uni[k >> 2u];
  }
  return select(vec4<f32>(0.0), v, inside);
}

// 1 / RMS of x.
fn inv_rms() -> f32 {
  var ss = vec4<f32>(0.0);
  for (var k = 0u; k < params.K; k += 4u) {
    let v = select(vec4<f32>(0.0), x4(k), inside4(k));
    ss += v * v;
  }
  return inverseSqrt(((ss.x + ss.y) + (ss.z + ss.w)) / f32(params.K) + params.eps);
}

// Σ over the 4 nibble pairs of a q4 word u (weights 8g .. 8g + 7: nibble i with nibble i + 4, 16 bits apart)
// times x's pair words (quantize_x.wgsl): the high 16 bits of the product gather n_i · x_i + n_(i+4) · x_(i+4),
// the low ones n_i · x_(i+4). Summed over 8 products, both stay under 2^15 in magnitude (15 · 127 · 16).
fn pairs(u: u32, x: vec4<u32>) -> u32 {
  let m = 0x000f000fu;
  return (u & m) * x.x + ((u >> 4u) & m) * x.y + ((u >> 8u) & m) * x.z + ((u >> 12u) & m) * x.w;
}

// The high field of a sum of pair products (the low one in −2^15 .. 2^15 rounds away).
fn high(p: u32) -> i32 {
  return bitcast<i32>(p + 0x8000u) >> 16u;
}

// Σ_k n[k] · q[k] over a block (q4 nibbles n, texel q) against x's 4 pair texels.
fn qblock(q: vec4<u32>, x0: vec4<u32>, x1: vec4<u32>, x2: vec4<u32>, x3: vec4<u32>) -> i32 {
  return high(pairs(q.x, x0) + pairs(q.y, x1)) + high(pairs(q.z, x2) + pairs(q.w, x3));
}

// Σ over a q8 word's 4 signed bytes (weights 4i .. 4i + 3) times x's two pair words for them: bytes 0 and 2,
// then 1 and 3, as signed 16-bit fields (offset by 128 through the XOR, the offset taken off field by field),
// each product's high field a_j · x_j + a_(j+2) · x_(j+2) (under 2^15 in magnitude: 2 · 128 · 127).
fn q8pairs(u: u32, xl: u32, xh: u32) -> i32 {
  let v = u ^ 0x80808080u;
  let lo = (v & 0x00ff00ffu) - 0x00800080u;
  let hi = ((v >> 8u) & 0x00ff00ffu) - 0x00800080u;
  return high(lo * xl) + high(hi * xh);
}

// Σ_k a[k] · q[k] over a q8 block (its two texels) against x's 4 pair texels.
fn q8block(qa: vec4<u32>, qb: vec4<u32>, x0: vec4<u32>, x1: vec4<u32>, x2: vec4<u32>, x3: vec4<u32>) -> i32 {
  let first = (q8pairs(qa.x, x0.x, x0.y) + q8pairs(qa.y, x0.z, x0.w)) +
    (q8pairs(qa.z, x1.x, x1.y) + q8pairs(qa.w, x1.z, x1.w));
  let second = (q8pairs(qb.x, x2.x, x2.y) + q8pairs(qb.y, x2.z, x2.w)) +
    (q8pairs(qb.z, x3.x, x3.y) + q8pairs(qb.w, x3.z, x3.w));
  return first + second;
}

// Block sums of the 4 rows of a group: q8 (two texels a row; its fields are signed, no offset) or q4 (one
// texel a row, the nibbles' offset of 8 taken out through x's 8 · Σ q).
fn block4(t0: u32, b: u32, x0: vec4<u32>, x1: vec4<u32>, x2: vec4<u32>, x3: vec4<u32>, offset: i32) -> vec4<i32> {
  if (W_DTYPE == 3u) {
    let t = t0 + 8u * b;
    return vec4<i32>(
      q8block(wblock(t), wblock(t + 4u), x0, x1, x2, x3),
      q8block(wblock(t + 1u), wblock(t + 5u), x0, x1, x2, x3),
      q8block(wblock(t + 2u), wblock(t + 6u), x0, x1, x2, x3),
      q8block(wblock(t + 3u), wblock(t + 7u), x0, x1, x2, x3),
    );
  }
  let t = t0 + 4u * b;
  return vec4<i32>(
    qblock(wblock(t), x0, x1, x2, x3),
    qblock(wblock(t + 1u), x0, x1, x2, x3),
    qblock(wblock(t + 2u), x0, x1, x2, x3),
    qblock(wblock(t + 3u), x0, x1, x2, x3),
  ) - vec4<i32>(offset);
}

// Scale j (0..7) of a texel of 8 f16 block scales.
fn scale8(q: vec4<u32>, j: u32) -> f32 {
  let u = pick(q, j >> 1u);
  return unpack2x16float(select(u, u >> 16u, (j & 1u) == 1u)).x;
}

// XQ: Σ_k x[k] · W[m0 + j, k] for the 4 rows of the group from row m0 (q8 or q4), x from xq.
fn dot4_xq(m0: u32) -> vec4<f32> {
  let t0 = m0 * blocks_per_row();
  let nb = (params.K + 31u) / 32u;
  var acc = vec4<f32>(0.0);
  for (var b8 = 0u; b8 < nb; b8 += 8u) {
    // One row texel holds the scales of blocks b8 .. b8 + 7.
    let st = t0 + 4u * (scale_word(b8) >> 2u);
    let s0 = wblock(st);
    let s1 = wblock(st + 1u);
    let s2 = wblock(st + 2u);
    let s3 = wblock(st + 3u);
    for (var j = 0u; j < min(8u, nb - b8); j++) {
      let b = b8 + j;
      let x0 = textureLoad(xq, vec2<u32>(4u * b, 0u));
      let x1 = textureLoad(xq, vec2<u32>(4u * b + 1u, 0u));
      let x2 = textureLoad(xq, vec2<u32>(4u * b + 2u, 0u));
      let x3 = textureLoad(xq, vec2<u32>(4u * b + 3u, 0u));
      let xm = textureLoad(xq, vec2<u32>(4u * nb + b, 0u));
      let s = block4(t0, b, x0, x1, x2, x3, bitcast<i32>(xm.y));
      let ws = vec4<f32>(scale8(s0, j), scale8(s1, j), scale8(s2, j), scale8(s3, j));
      acc += vec4<f32>(s) * (bitcast<f32>(xm.x) * ws);
    }
  }
  return acc;
}

// Σ_k norm(x)[k] · W[m0 + j, k] for the 4 rows of the group from row m0.
fn dot4(m0: u32) -> vec4<f32> {
  if (XQ && W_DTYPE >= 3u) {
    return dot4_xq(m0);
  }
  let t0 = m0 * blocks_per_row();
  var acc = vec4<f32>(0.0);
  for (var c = 0u; c < (params.K + EPV - 1u) / EPV; c++) {
    let k = c * EPV;
    let t = t0 + 4u * c;
    let q0 = wblock(t);
    let q1 = wblock(t + 1u);
    let q2 = wblock(t + 2u);
    let q3 = wblock(t + 3u);
    if (W_DTYPE >= 3u) {
      var s = vec4<f32>(0.0);
      for (var h = 0u; h < EPV / 8u; h++) {
        let p = xg4(k + 8u * h);
        let r = xg4(k + 8u * h + 4u);
        s += vec4<f32>(
          dot(qlo(q0, h), p) + dot(qhi(q0, h), r),
          dot(qlo(q1, h), p) + dot(qhi(q1, h), r),
          dot(qlo(q2, h), p) + dot(qhi(q2, h), r),
          dot(qlo(q3, h), p) + dot(qhi(q3, h), r),
        );
      }
      acc += s * qscale4(t0, k >> 5u);
    } else if (W_DTYPE == 0u) {
      let p = xg4(k);
      acc += vec4<f32>(dot(lo4(q0), p), dot(lo4(q1), p), dot(lo4(q2), p), dot(lo4(q3), p));
    } else {
      let p = xg4(k);
      let r = xg4(k + 4u);
      acc += vec4<f32>(
        dot(lo4(q0), p) + dot(hi4(q0), r),
        dot(lo4(q1), p) + dot(hi4(q1), r),
        dot(lo4(q2), p) + dot(hi4(q2), r),
        dot(lo4(q3), p) + dot(hi4(q3), r),
      );
    }
  }
  return acc;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) li: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  params = params_in;
  let last = (params.rows - 1u) / 4u; // the part's last group
  let first = ((wid.x + wid.z * nwg.x) * WG + li) * params.groups;
  if (step.n_rows == 0u || first > last) {
    return;
  }
  let scale = scale_no_branch(0u);
  var a = 1.0;
  if (NORM) {
    a = inv_rms();
  }
  // ARGMAX: the largest output so far (key) and its row; rows in increasing order, so ties keep the lowest.
  var bk = 0u;
  var bi = 0xffffffffu;
  // The same trip count on every lane: a lane past the part repeats the last group and stores nothing.
  for (var i = 0u; i < params.groups; i++) {
    let live = first + i <= last;
    let m0 = min(first + i, last) * 4u;
    let sums = dot4(m0) * a;
    if (live) {
      epilogue(0u, m0, sums, scale);
    }
    if (ARGMAX) {
      // Unrolled by hand: llvmpipe is slow at dynamic component indices.
      let v = sums * scale;
      let k = vec4<u32>(f2key(v.x), f2key(v.y), f2key(v.z), f2key(v.w));
      let ok = vec4<bool>(live) & (vec4<u32>(m0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.rows));
      // The group's best first (ties to the lower row), then against the best so far.
      var gk = k.x;
      var gc = select(4u, 0u, ok.x);
      let b1 = ok.y && (gc == 4u || k.y > gk);
      gk = select(gk, k.y, b1);
      gc = select(gc, 1u, b1);
      let b2 = ok.z && (gc == 4u || k.z > gk);
      gk = select(gk, k.z, b2);
      gc = select(gc, 2u, b2);
      let b3 = ok.w && (gc == 4u || k.w > gk);
      gk = select(gk, k.w, b3);
      gc = select(gc, 3u, b3);
      let better = gc < 4u && (bi == 0xffffffffu || gk > bk);
      bk = select(bk, gk, better);
      bi = select(bi, params.out_offset + m0 + gc, better);
    }
  }
  if (ARGMAX) {
    let slot = params.best_base + first / params.groups;
    best[2u * slot] = bk;
    best[2u * slot + 1u] = bi;
  }
}
