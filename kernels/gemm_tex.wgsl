// Matmul with the weights in a read-only rgba32uint storage texture, for CPU software GPUs (llvmpipe /
// lavapipe), any number of activation rows. Each invocation computes NT activation rows × params.groups groups
// of 4 weight rows straight from memory (no workgroup memory or barrier — barriers are costly there): each
// weight block fetched serves NT activation rows, and x, the same for every lane, is a uniform load. Texels
// because llvmpipe fetches them several times faster than storage words whose addresses differ across SIMD
// lanes (and storage-texture loads ~1.5x faster than sampled-texture ones). Flags as gemm.wgsl (NORM, SWIGLU)
// plus ROPE below:
//   y[n, out_offset + m] (+)= alpha · s(n) · Σ_k x[n, k] · W[m, k]    for n < step.n_rows, m < params.rows
//
// Bindings: 0 params (uniform), 1 step, 2 x (f32 [N, K]; buffer size a multiple of 16 bytes), 3 w (one part of
// a matrix as texels, 2^tex_shift per texture row, rows padded to 16 bytes and to a multiple of 4: each group
// of 4 rows interleaves its rows' 16-byte blocks, so block b of row m is texel ((m / 4) · bpr + b) · 4 + m % 4
// with bpr blocks per row — an invocation walks its texels in order, which llvmpipe streams ~20% faster than
// 4 rows side by side), 4 y (f32 [N, y_stride]),
// 5 row_scale (f32 [N]), 6 norm_w (f32 [K]), 7 rows ({slot, pos} per activation row), 8 cos_sin
// ([ctx, head_dim / 2]), 9 k_cache, 10 v_cache (this layer's, [slots, ctx, kv_dim]).
//
// Fusion bit 6 ROPE (the attention projections, so that RoPE and the KV write need no kernel of their own):
// matrix rows are [q (q_rows); k (kv_dim); v (kv_dim); extra], with each head's q and k rows stored as rotation
// pairs — row 2i holds the head's dimension i and row 2i + 1 dimension i + head_dim / 2 (the loader permutes
// them; q · k is unchanged when both use the same order). Each invocation's 4 rows are two whole pairs, so it
// rotates them at the activation row's position and writes q to y (column = matrix row), k and v straight into
// the KV cache at (slot, pos), and any rows after v (a FlexiDepth router's W_enc) to y as they are. Needs
// head_dim, q_rows and kv_dim multiples of 4.
// Grid: x = ceil(M / (4 · WG · groups)) (wrapping into z beyond 65535), y = ceil(N / NT).

requires readonly_and_readwrite_storage_textures;

//! use lib/step.wgsl

override W_DTYPE: u32 = 0u; // 0 f32, 1 f16, 2 bf16, 3 q8, 4 q4 (quantized: see qscale)
override WG: u32 = 8u;
override NT: u32 = 8u; // activation rows per invocation, 1 ..= 8

struct Params {
  K: u32,
  rows: u32,
  row_stride: u32,
  y_stride: u32,
  out_offset: u32,
  alpha: f32,
  // bit 0: accumulate; bits 1-2: row scale; bit 3: K % 4 == 0; bit 4: NORM; bit 5: SWIGLU (as gemm.wgsl);
  // bit 6: ROPE.
  flags: u32,
  eps: f32, // RMSNorm epsilon (NORM)
  tex_shift: u32, // log2 of texels per texture row
  head_dim: u32, // ROPE
  q_rows: u32, // ROPE: matrix rows before k
  kv_dim: u32, // ROPE
  ctx: u32, // ROPE: positions per cache slot
  groups: u32, // 4-row groups per invocation (several for short rows: fewer invocations to set up)
  pad1: u32,
  pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var w: texture_storage_2d<rgba32uint, read>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> row_scale: array<f32>;
@group(0) @binding(6) var<storage, read> norm_w: array<f32>;
@group(0) @binding(7) var<storage, read> rows: array<Row>;
@group(0) @binding(8) var<storage, read> cos_sin: array<vec2<f32>>;
@group(0) @binding(9) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(10) var<storage, read_write> v_cache: array<f32>;
// Weight elements per 16-byte block.
override EPV: u32 = select(select(8u, 4u, W_DTYPE == 0u), select(32u, 16u, W_DTYPE == 3u), W_DTYPE >= 3u);

const MAXNT: u32 = 8u;

// Texel i of the part.
fn wblock(i: u32) -> vec4<u32> {
  let mask = (1u << params.tex_shift) - 1u;
  return textureLoad(w, vec2<u32>(i & mask, i >> params.tex_shift));
}

fn accumulate() -> bool {
  return (params.flags & 1u) != 0u;
}

fn scale_mode() -> u32 {
  return (params.flags >> 1u) & 3u;
}

fn x_aligned() -> bool {
  return (params.flags & 8u) != 0u;
}

fn has_norm() -> bool {
  return (params.flags & 16u) != 0u;
}

fn swiglu() -> bool {
  return (params.flags & 32u) != 0u;
}

fn xs(i: u32) -> f32 {
  // A select, not x[i >> 2u][i & 3u]: llvmpipe turns a dynamic component index into a very slow path
  // (an unaligned 64×10 matmul took 11 ms).
  let v = x[i >> 2u];
  let c = i & 3u;
  return select(select(v.x, v.y, c == 1u), select(v.z, v.w, c == 3u), c >= 2u);
}

fn x4(i: u32) -> vec4<f32> {
  if (x_aligned()) {
    return x[i >> 2u];
  }
  return vec4<f32>(xs(i), xs(i + 1u), xs(i + 2u), xs(i + 3u));
}

// RMSNorm weights for columns k .. k + 4 (ones without NORM); k + 4 ≤ K.
fn g4(k: u32) -> vec4<f32> {
  if (!has_norm()) {
    return vec4<f32>(1.0);
  }
  return vec4<f32>(norm_w[k], norm_w[k + 1u], norm_w[k + 2u], norm_w[k + 3u]);
}

fn gs(k: u32) -> f32 {
  return select(1.0, norm_w[k], has_norm());
}

fn inv_rms(ss: f32) -> f32 {
  return inverseSqrt(ss / f32(params.K) + params.eps);
}

// 1 / RMS of activation row n (NORM; x loads are uniform across the invocations of the direct kernel).
fn row_inv_rms(n: u32) -> f32 {
  let K = params.K;
  let base = n * K;
  var ss = vec4<f32>(0.0);
  var k = 0u;
  for (; k + 4u <= K; k += 4u) {
    let v = x4(base + k);
    ss += v * v;
  }
  var s = (ss.x + ss.y) + (ss.z + ss.w);
  for (; k < K; k++) {
    let v = xs(base + k);
    s += v * v;
  }
  return inv_rms(s);
}

fn silu(g: f32) -> f32 {
  return g / (1.0 + exp(-g));
}

fn put(i: u32, v: f32) {
  if (accumulate()) {
    y[i] += v;
  } else {
    y[i] = v;
  }
}

// u32 words per weight row: row_stride counts elements (f32, 16-bit) or bytes (quantized).
fn words_per_row() -> u32 {
  if (W_DTYPE >= 3u) {
    return params.row_stride / 4u;
  }
  return select(params.row_stride / 2u, params.row_stride, W_DTYPE == 0u);
}

// Word i of a 16-byte block (a select: llvmpipe is slow at dynamic component indices).
fn pick(q: vec4<u32>, i: u32) -> u32 {
  return select(select(q.x, q.y, (i & 3u) == 1u), select(q.z, q.w, (i & 3u) == 3u), (i & 3u) >= 2u);
}

// 16-byte blocks per row (rows are padded to whole blocks).
fn blocks_per_row() -> u32 {
  return words_per_row() / 4u;
}

// Word i of part row m.
fn word(m: u32, i: u32) -> u32 {
  return pick(wblock(((m >> 2u) * blocks_per_row() + (i >> 2u)) * 4u + (m & 3u)), i);
}

// Quantized formats (src/model/quant.ts): a row holds ceil(K / 32) blocks of 32 weights — signed bytes (q8)
// or nibbles offset by 8 (q4) — then one f16 scale per block; weight = q · scale. Scale of block b of row m:
fn qscale(m: u32, b: u32) -> f32 {
  let u = word(m, ((params.K + 31u) / 32u) * select(4u, 8u, W_DTYPE == 3u) + (b >> 1u));
  return unpack2x16float(select(u & 0xffffu, u >> 16u, (b & 1u) == 1u)).x;
}

// The 4 signed bytes of u (q8).
fn q8x4(u: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(u) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
}

// Nibbles shift / 4 .. shift / 4 + 3 of u, less 8 (q4).
fn q4x4(u: u32, shift: u32) -> vec4<f32> {
  return vec4<f32>((vec4<u32>(u) >> (vec4<u32>(0u, 4u, 8u, 12u) + shift)) & vec4<u32>(15u)) - 8.0;
}

// Weights 8h .. 8h + 3 and 8h + 4 .. 8h + 7 of a block of quantized weights, unscaled.
fn qlo(q: vec4<u32>, h: u32) -> vec4<f32> {
  if (W_DTYPE == 3u) {
    return q8x4(pick(q, 2u * h));
  }
  return q4x4(pick(q, h), 0u);
}

fn qhi(q: vec4<u32>, h: u32) -> vec4<f32> {
  if (W_DTYPE == 3u) {
    return q8x4(pick(q, 2u * h + 1u));
  }
  return q4x4(pick(q, h), 16u);
}

// Scales of block b of the 4 weight rows from m0 (a multiple of 4).
fn qscale4(m0: u32, b: u32) -> vec4<f32> {
  return vec4<f32>(qscale(m0, b), qscale(m0 + 1u, b), qscale(m0 + 2u, b), qscale(m0 + 3u, b));
}

// Weight k of part row m.
fn welem(m: u32, k: u32) -> f32 {
  if (W_DTYPE >= 3u) {
    let d = qscale(m, k >> 5u);
    if (W_DTYPE == 3u) {
      return f32(bitcast<i32>(word(m, k >> 2u) << (24u - 8u * (k & 3u))) >> 24u) * d;
    }
    return (f32((word(m, k >> 3u) >> (4u * (k & 7u))) & 15u) - 8.0) * d;
  }
  if (W_DTYPE == 0u) {
    return bitcast<f32>(word(m, k));
  }
  let u = word(m, k >> 1u);
  let h = select(u & 0xffffu, u >> 16u, (k & 1u) == 1u);
  if (W_DTYPE == 1u) {
    return unpack2x16float(h).x;
  }
  return bitcast<f32>(h << 16u);
}

fn lo4(q: vec4<u32>) -> vec4<f32> {
  if (W_DTYPE == 0u) {
    return bitcast<vec4<f32>>(q);
  }
  if (W_DTYPE == 1u) {
    return vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y));
  }
  return bitcast<vec4<f32>>(vec4<u32>(q.x << 16u, q.x & 0xffff0000u, q.y << 16u, q.y & 0xffff0000u));
}

fn hi4(q: vec4<u32>) -> vec4<f32> {
  if (W_DTYPE == 0u) {
    return vec4<f32>(0.0);
  }
  if (W_DTYPE == 1u) {
    return vec4<f32>(unpack2x16float(q.z), unpack2x16float(q.w));
  }
  return bitcast<vec4<f32>>(vec4<u32>(q.z << 16u, q.z & 0xffff0000u, q.w << 16u, q.w & 0xffff0000u));
}

// Stores a · acc (component j: column m0 + j; a = 1 / RMS under NORM) into activation row n, when live (an
// invocation's groups past the part repeat the last one and store nothing).
fn store4(n: u32, m0: u32, acc_in: vec4<f32>, a: f32, live: bool) {
  if (n >= step.n_rows || !live) {
    return;
  }
  var s = params.alpha;
  if (scale_mode() == 1u) {
    s *= row_scale[n];
  } else if (scale_mode() == 2u) {
    s *= 1.0 - row_scale[n];
  }
  let acc = acc_in * a;
  if ((params.flags & 64u) != 0u) {
    rope_store(n, params.out_offset + m0, acc * s);
    return;
  }
  if (swiglu()) {
    // Rows (m0, m0 + 1) and (m0 + 2, m0 + 3) are (gate, up) pairs; m0 and out_offset are even.
    let o = n * params.y_stride + (params.out_offset + m0) / 2u;
    if (m0 + 1u < params.rows) {
      put(o, silu(acc.x) * acc.y * s);
    }
    if (m0 + 3u < params.rows) {
      put(o + 1u, silu(acc.z) * acc.w * s);
    }
    return;
  }
  let base = n * params.y_stride + params.out_offset;
  for (var j = 0u; j < 4u; j++) {
    let m = m0 + j;
    if (m < params.rows) {
      put(base + m, acc[j] * s);
    }
  }
}

// ROPE: rows gm .. gm + 3 of the whole matrix (two rotation pairs of one head, or 4 values of v) of
// activation row n.
fn rope_store(n: u32, gm: u32, v_in: vec4<f32>) {
  let row = rows[n];
  let hd = params.head_dim;
  let q_rows = params.q_rows;
  let kv = params.kv_dim;
  var v = v_in;
  if (gm < q_rows + kv) {
    let t = row.pos * (hd / 2u) + (gm % hd) / 2u;
    let c0 = cos_sin[t];
    let c1 = cos_sin[t + 1u];
    v = vec4<f32>(
      v.x * c0.x - v.y * c0.y,
      v.y * c0.x + v.x * c0.y,
      v.z * c1.x - v.w * c1.y,
      v.w * c1.x + v.z * c1.y,
    );
  }
  let cache = (row.slot * params.ctx + row.pos) * kv;
  for (var j = 0u; j < 4u; j++) {
    let m = gm + j;
    if (m - params.out_offset >= params.rows) {
      return;
    }
    if (m < q_rows) {
      y[n * params.y_stride + m] = v[j];
    } else if (m < q_rows + kv) {
      k_cache[cache + m - q_rows] = v[j];
    } else if (m < q_rows + 2u * kv) {
      v_cache[cache + m - q_rows - kv] = v[j];
    } else {
      y[n * params.y_stride + m] = v[j];
    }
  }
}

// acc[j] += x row j (chunk c: xa, xb) · the 4 weight rows' blocks at texels t .. t + 3, for j < nb.
fn mac(
  t: u32,
  nb: u32,
  xa: ptr<function, array<vec4<f32>, MAXNT>>,
  xb: ptr<function, array<vec4<f32>, MAXNT>>,
  acc: ptr<function, array<vec4<f32>, MAXNT>>,
) {
  let q0 = wblock(t);
  let q1 = wblock(t + 1u);
  let q2 = wblock(t + 2u);
  let q3 = wblock(t + 3u);
  let a0 = lo4(q0);
  let a1 = lo4(q1);
  let a2 = lo4(q2);
  let a3 = lo4(q3);
  let b0 = hi4(q0);
  let b1 = hi4(q1);
  let b2 = hi4(q2);
  let b3 = hi4(q3);
  for (var j = 0u; j < NT; j++) {
    if (j < nb) {
      let p = (*xa)[j];
      if (W_DTYPE == 0u) {
        (*acc)[j] += vec4<f32>(dot(a0, p), dot(a1, p), dot(a2, p), dot(a3, p));
      } else {
        let r = (*xb)[j];
        (*acc)[j] += vec4<f32>(
          dot(a0, p) + dot(b0, r),
          dot(a1, p) + dot(b1, r),
          dot(a2, p) + dot(b2, r),
          dot(a3, p) + dot(b3, r),
        );
      }
    }
  }
}

// NT activation rows × params.groups groups of 4 weight rows per invocation, straight from memory. The group
// loop runs the same count on every lane (a lane past the part repeats the last group, storing nothing): in
// uniform control flow llvmpipe fetches without per-lane masks.
fn direct(li: u32, bm: u32, bn: u32) {
  let n0 = bn * NT;
  if (n0 >= step.n_rows) {
    return;
  }
  let nb = min(NT, step.n_rows - n0);
  let last = (params.rows - 1u) / 4u;
  let first = (bm * WG + li) * params.groups;
  if (first > last) {
    return;
  }
  // 1 / RMS of each activation row (NORM), else 1: once for all groups.
  var a: array<f32, MAXNT>;
  for (var j = 0u; j < NT; j++) {
    a[j] = 1.0;
    if (j < nb && has_norm()) {
      a[j] = row_inv_rms(n0 + j);
    }
  }
  for (var i = 0u; i < params.groups; i++) {
    rows_group(n0, nb, min(first + i, last) * 4u, &a, first + i <= last);
  }
}

// NT activation rows × the 4 weight rows from m0 (a multiple of 4).
// a[j]: 1 / RMS of activation row n0 + j (NORM), else 1.
fn rows_group(n0: u32, nb: u32, m0: u32, a: ptr<function, array<f32, MAXNT>>, live: bool) {
  let K = params.K;
  let t0 = m0 * blocks_per_row(); // the group's first texel
  var acc: array<vec4<f32>, MAXNT>; // acc[j]: activation row n0 + j, weight rows m0 .. m0 + 3
  var xa: array<vec4<f32>, MAXNT>;
  var xb: array<vec4<f32>, MAXNT>;
  let nchunks = K / EPV;
  if (W_DTYPE >= 3u) {
    direct_quant(n0, nb, m0, &acc);
  }
  for (var c = 0u; c < select(nchunks, 0u, W_DTYPE >= 3u); c++) {
    let k = c * EPV;
    let ga = g4(k);
    var gb = vec4<f32>(1.0);
    if (W_DTYPE != 0u) {
      gb = g4(k + 4u);
    }
    for (var j = 0u; j < NT; j++) {
      if (j < nb) {
        let i = (n0 + j) * K + k;
        xa[j] = x4(i) * ga;
        if (W_DTYPE != 0u) {
          xb[j] = x4(i + 4u) * gb;
        }
      }
    }
    mac(t0 + 4u * c, nb, &xa, &xb, &acc);
  }
  // K tail (K not a multiple of EPV): element by element.
  for (var k = nchunks * EPV; k < K; k++) {
    let e = vec4<f32>(welem(m0, k), welem(m0 + 1u, k), welem(m0 + 2u, k), welem(m0 + 3u, k)) * gs(k);
    for (var j = 0u; j < NT; j++) {
      if (j < nb) {
        acc[j] += xs((n0 + j) * K + k) * e;
      }
    }
  }
  for (var j = 0u; j < NT; j++) {
    if (j < nb) {
      store4(n0 + j, m0, acc[j], (*a)[j], live);
    }
  }
}

// direct() over the whole 16-byte blocks of quantized weights: 8 weights of every row at a time, each
// weight row's 4-vectors as a column of wa / wb (so x · wa gives the 4 rows' dot products).
fn direct_quant(n0: u32, nb: u32, m0: u32, acc: ptr<function, array<vec4<f32>, MAXNT>>) {
  let K = params.K;
  let t0 = m0 * blocks_per_row();
  for (var c = 0u; c < K / EPV; c++) {
    let k = c * EPV;
    let q0 = wblock(t0 + 4u * c);
    let q1 = wblock(t0 + 4u * c + 1u);
    let q2 = wblock(t0 + 4u * c + 2u);
    let q3 = wblock(t0 + 4u * c + 3u);
    let d = qscale4(m0, k >> 5u);
    for (var h = 0u; h < EPV / 8u; h++) {
      let kh = k + 8u * h;
      let wa = mat4x4<f32>(qlo(q0, h) * d.x, qlo(q1, h) * d.y, qlo(q2, h) * d.z, qlo(q3, h) * d.w);
      let wb = mat4x4<f32>(qhi(q0, h) * d.x, qhi(q1, h) * d.y, qhi(q2, h) * d.z, qhi(q3, h) * d.w);
      let ga = g4(kh);
      let gb = g4(kh + 4u);
      for (var j = 0u; j < NT; j++) {
        if (j < nb) {
          let i = (n0 + j) * K + kh;
          (*acc)[j] += (x4(i) * ga) * wa + (x4(i + 4u) * gb) * wb;
        }
      }
    }
  }
}

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) li: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  direct(li, wid.x + wid.z * nwg.x, wid.y);
}
