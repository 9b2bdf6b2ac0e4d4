// GEMV for a few activation rows (decode):
//   y[n, out_offset + m] (+)= alpha · s(n) · Σ_k x[n, k] · W[m, k]    for n < step.n_rows, m < params.rows
// where s(n) = 1, row_scale[n] or 1 − row_scale[n] (flags bits 1-2: 0, 1, 2).
// Fusions (flags), each saving a kernel and a pass over the activations:
//   bit 4 NORM    x is read through RMSNorm: x · rsqrt(mean(x²) + eps) · norm_w. The kernel sums x² from the
//                 x values it loads anyway and applies the 1 / RMS to the finished dot product (it factors out).
//   bit 5 SWIGLU  weight rows interleave gate and up (row 2i gate i, row 2i + 1 up i); output column
//                 (out_offset + m) / 2 gets silu(gate) · up: the MLP's gate, up and SiLU in one pass.
//   bit 6 ROPE    the attention projection [q; k; v; extra] with q and k rows in rotation pairs (as
//                 gemm_tex.wgsl): q and k rotated at each activation row's position, q (and rows after v) to
//                 y, k and v straight into the KV cache — no RoPE / KV-write kernel of its own.
//
// Bindings: 0 params (uniform), 1 step (uniform), 2 x (f32 [N, K] row-major; buffer size a multiple of
// 16 bytes), 3 w (one part of a matrix: rows of row_stride elements, 16-byte aligned), 4 y (f32 [N, y_stride]),
// 5 row_scale (f32 [N]; any buffer when the row scale is off), 6 norm_w (f32 [K], buffer size a multiple of
// 16 bytes; any buffer without NORM), 7 rows ({slot, pos} per activation row), 8 cos_sin ([ctx, head_dim / 2]),
// 9 k_cache, 10 v_cache (this layer's, [slots, ctx, kv_dim]); 7-10 are read under ROPE only.
//
// Grid: x = blocks of WG / TPR output rows (wrapping into z beyond 65535 blocks), y = ceil(N / 4): each
// invocation handles up to 4 activation rows, so every weight it loads serves all of them.
//
// Variants (override TPR, threads per output row):
//   TPR = 32+ (real GPUs) a group of TPR threads strides over one row with vec4<u32> loads (coalesced);
//             partial sums meet in workgroup memory (a tree of log2(TPR) barriers). TPR: a power of two.
//   TPR = 1   one row per invocation, no barrier. Not chosen automatically: on CPU software GPUs the direct
//             kernel of gemm.wgsl / gemm_sg.wgsl is faster (it reuses every load for several rows).

//! use lib/step.wgsl

override W_DTYPE: u32 = 0u; // 0 f32, 1 f16, 2 bf16, 3 q8, 4 q4 (quantized: see qscale)
override TPR: u32 = 1u; // threads per output row (power of two)
override WG: u32 = 64u; // invocations per workgroup (a multiple of TPR)

struct Params {
  K: u32,
  rows: u32,
  row_stride: u32,
  y_stride: u32,
  out_offset: u32,
  alpha: f32,
  // bit 0: accumulate (y += result); bits 1-2: row scale (0 none, 1 × row_scale[n], 2 × (1 − row_scale[n]));
  // bit 3: K % 4 == 0 (x rows start on 16-byte boundaries); bit 4: NORM; bit 5: SWIGLU; bit 6: ROPE. Runtime
  // flags, not overrides: on llvmpipe every distinct pipeline of a module competes for a small cache of compiled variants.
  flags: u32,
  eps: f32, // RMSNorm epsilon (NORM)
  tex_shift: u32, // (gemm_tex's; unused here)
  head_dim: u32, // ROPE
  q_rows: u32, // ROPE: matrix rows before k
  kv_dim: u32, // ROPE
  ctx: u32, // ROPE: positions per cache slot
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> row_scale: array<f32>;
@group(0) @binding(6) var<storage, read> norm_w: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> rows: array<Row>;
@group(0) @binding(8) var<storage, read> cos_sin: array<vec2<f32>>;
@group(0) @binding(9) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(10) var<storage, read_write> v_cache: array<f32>;

// Output rows per workgroup.
override RPW: u32 = WG / TPR;
// Weight elements per vec4<u32>.
override EPV: u32 = select(select(8u, 4u, W_DTYPE == 0u), select(32u, 16u, W_DTYPE == 3u), W_DTYPE >= 3u);

var<workgroup> partial: array<vec4<f32>, WG>;
var<workgroup> partial_ss: array<vec4<f32>, WG>; // NORM: Σx² per activation row

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

fn rope() -> bool {
  return (params.flags & 64u) != 0u;
}

fn xs(i: u32) -> f32 {
  // A select, not x[i >> 2u][i & 3u]: llvmpipe turns a dynamic component index into a very slow path
  // (an unaligned 64×10 matmul took 11 ms).
  let v = x[i >> 2u];
  let c = i & 3u;
  return select(select(v.x, v.y, c == 1u), select(v.z, v.w, c == 3u), c >= 2u);
}

// x[i .. i + 4] by flat element index.
fn x4(i: u32) -> vec4<f32> {
  if (x_aligned()) {
    return x[i >> 2u];
  }
  return vec4<f32>(xs(i), xs(i + 1u), xs(i + 2u), xs(i + 3u));
}

// u32 words per weight row: row_stride counts elements (f32, 16-bit) or bytes (quantized).
fn words_per_row() -> u32 {
  if (W_DTYPE >= 3u) {
    return params.row_stride / 4u;
  }
  return select(params.row_stride / 2u, params.row_stride, W_DTYPE == 0u);
}

fn word(i: u32) -> u32 {
  return w[i >> 2u][i & 3u];
}

// Quantized formats (src/model/quant.ts): a row holds ceil(K / 32) blocks of 32 weights — signed bytes (q8)
// or nibbles offset by 8 (q4) — then one f16 scale per block; weight = q · scale. Scale of block b of the
// row whose first word is word0:
fn qscale(word0: u32, b: u32) -> f32 {
  let u = word(word0 + ((params.K + 31u) / 32u) * select(4u, 8u, W_DTYPE == 3u) + (b >> 1u));
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

// Weights 4g .. 4g + 3 of a 16-byte chunk of quantized weights, unscaled.
fn qgroup(q: vec4<u32>, g: u32) -> vec4<f32> {
  if (W_DTYPE == 3u) {
    return q8x4(q[g]);
  }
  return q4x4(q[g >> 1u], (g & 1u) * 16u);
}

// Weight element k of the row whose first u32 word is `word0` (K tails only).
fn welem(word0: u32, k: u32) -> f32 {
  if (W_DTYPE >= 3u) {
    let d = qscale(word0, k >> 5u);
    if (W_DTYPE == 3u) {
      let u = word(word0 + (k >> 2u));
      return f32(bitcast<i32>(u << (24u - 8u * (k & 3u))) >> 24u) * d;
    }
    let u = word(word0 + (k >> 3u));
    return (f32((u >> (4u * (k & 7u))) & 15u) - 8.0) * d;
  }
  if (W_DTYPE == 0u) {
    let i = word0 + k;
    return bitcast<f32>(w[i >> 2u][i & 3u]);
  }
  let i = word0 + (k >> 1u);
  let u = w[i >> 2u][i & 3u];
  let h = select(u & 0xffffu, u >> 16u, (k & 1u) == 1u);
  if (W_DTYPE == 1u) {
    return unpack2x16float(h).x;
  }
  return bitcast<f32>(h << 16u);
}

// Elements 0..3 and 4..7 of a vec4<u32> of 16-bit values (element 2i in the low half of word i).
fn lo4(q: vec4<u32>) -> vec4<f32> {
  if (W_DTYPE == 1u) {
    return vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y));
  }
  return bitcast<vec4<f32>>(vec4<u32>(q.x << 16u, q.x & 0xffff0000u, q.y << 16u, q.y & 0xffff0000u));
}

fn hi4(q: vec4<u32>) -> vec4<f32> {
  if (W_DTYPE == 1u) {
    return vec4<f32>(unpack2x16float(q.z), unpack2x16float(q.w));
  }
  return bitcast<vec4<f32>>(vec4<u32>(q.z << 16u, q.z & 0xffff0000u, q.w << 16u, q.w & 0xffff0000u));
}

fn hsum(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

// x[i .. i + 4] (columns k .. k + 4, k a multiple of 4) through the RMSNorm weights under NORM, adding the
// raw squares to *ss. One vec4 load of the norm weights, not four scalar ones: with NORM the loads of x and
// the norm weights outnumber those of the matrix (an H100 ran gate/up at 1256 GB/s with scalar norm loads,
// 1875 without NORM).
fn xn4(i: u32, k: u32, ss: ptr<function, vec4<f32>>) -> vec4<f32> {
  let v = x4(i);
  if (!has_norm()) {
    return v;
  }
  *ss += v * v;
  return v * norm_w[k >> 2u];
}

// RMSNorm weight k (K tails only).
fn norm1(k: u32) -> f32 {
  let v = norm_w[k >> 2u];
  let c = k & 3u;
  return select(select(v.x, v.y, c == 1u), select(v.z, v.w, c == 3u), c >= 2u);
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

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) li: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let K = params.K;
  let n0 = wid.y * 4u;
  if (n0 >= step.n_rows) {
    return;
  }
  let nb = min(4u, step.n_rows - n0);
  let lane = li % TPR;
  let m = (wid.x + wid.z * nwg.x) * RPW + li / TPR;
  let mm = min(m, params.rows - 1u); // rows past the part compute a copy of the last and store nothing
  let row_words = words_per_row();
  let v0 = mm * (row_words / 4u);
  let nchunks = K / EPV;
  let x0 = n0 * K;
  let x1 = x0 + K;
  let x2 = x1 + K;
  let x3 = x2 + K;

  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  var q0 = vec4<f32>(0.0); // Σx² partials (NORM)
  var q1 = vec4<f32>(0.0);
  var q2 = vec4<f32>(0.0);
  var q3 = vec4<f32>(0.0);
  for (var c = lane; c < nchunks; c += TPR) {
    let q = w[v0 + c];
    let k = c * EPV;
    if (W_DTYPE == 0u) {
      let wa = bitcast<vec4<f32>>(q);
      a0 += wa * xn4(x0 + k, k, &q0);
      if (nb > 1u) {
        a1 += wa * xn4(x1 + k, k, &q1);
      }
      if (nb > 2u) {
        a2 += wa * xn4(x2 + k, k, &q2);
      }
      if (nb > 3u) {
        a3 += wa * xn4(x3 + k, k, &q3);
      }
    } else if (W_DTYPE >= 3u) {
      // Quantized: the chunk is half a block (q8) or one block (q4), all under one scale.
      let d = qscale(mm * row_words, k >> 5u);
      var s0 = vec4<f32>(0.0);
      var s1 = vec4<f32>(0.0);
      var s2 = vec4<f32>(0.0);
      var s3 = vec4<f32>(0.0);
      for (var g = 0u; g < EPV / 4u; g++) {
        let wg = qgroup(q, g);
        let kg = k + 4u * g;
        s0 += wg * xn4(x0 + kg, kg, &q0);
        if (nb > 1u) {
          s1 += wg * xn4(x1 + kg, kg, &q1);
        }
        if (nb > 2u) {
          s2 += wg * xn4(x2 + kg, kg, &q2);
        }
        if (nb > 3u) {
          s3 += wg * xn4(x3 + kg, kg, &q3);
        }
      }
      a0 += d * s0;
      a1 += d * s1;
      a2 += d * s2;
      a3 += d * s3;
    } else {
      let wa = lo4(q);
      let wb = hi4(q);
      a0 += wa * xn4(x0 + k, k, &q0) + wb * xn4(x0 + k + 4u, k + 4u, &q0);
      if (nb > 1u) {
        a1 += wa * xn4(x1 + k, k, &q1) + wb * xn4(x1 + k + 4u, k + 4u, &q1);
      }
      if (nb > 2u) {
        a2 += wa * xn4(x2 + k, k, &q2) + wb * xn4(x2 + k + 4u, k + 4u, &q2);
      }
      if (nb > 3u) {
        a3 += wa * xn4(x3 + k, k, &q3) + wb * xn4(x3 + k + 4u, k + 4u, &q3);
      }
    }
  }
  var s = vec4<f32>(hsum(a0), hsum(a1), hsum(a2), hsum(a3));
  var ss = vec4<f32>(hsum(q0), hsum(q1), hsum(q2), hsum(q3));
  // K tail (K not a multiple of EPV): element by element.
  for (var k = nchunks * EPV + lane; k < K; k += TPR) {
    let wv = welem(mm * row_words, k);
    var xv = vec4<f32>(xs(x0 + k), 0.0, 0.0, 0.0);
    if (nb > 1u) {
      xv.y = xs(x1 + k);
    }
    if (nb > 2u) {
      xv.z = xs(x2 + k);
    }
    if (nb > 3u) {
      xv.w = xs(x3 + k);
    }
    if (has_norm()) {
      ss += xv * xv;
      xv *= norm1(k);
    }
    s += wv * xv;
  }

  if (TPR > 1u) {
    partial[li] = s;
    partial_ss[li] = ss;
    workgroupBarrier();
    for (var off = TPR / 2u; off > 0u; off >>= 1u) {
      if (lane < off) {
        partial[li] += partial[li + off];
        partial_ss[li] += partial_ss[li + off];
      }
      workgroupBarrier();
    }
    s = partial[li];
    ss = partial_ss[li];
  }
  if (has_norm()) {
    s *= inverseSqrt(ss / f32(K) + params.eps);
  }

  if (swiglu() || rope()) {
    // Rows 2i and 2i + 1 meet — (gate, up) under SWIGLU, a rotation pair under ROPE: the even row's lane 0
    // reads the odd row's sums (RPW is even). Each invocation overwrites only its own slot, after the
    // reduction's last barrier.
    partial[li] = s;
    workgroupBarrier();
    if (lane != 0u || (m & 1u) == 1u || m >= params.rows) {
      return;
    }
    let u = partial[li + TPR];
    for (var j = 0u; j < nb; j++) {
      let n = n0 + j;
      if (rope()) {
        rope_pair(n, params.out_offset + m, vec2<f32>(s[j], u[j]) * row_factor(n));
      } else {
        put(n * params.y_stride + (params.out_offset + m) / 2u, silu(s[j]) * u[j] * row_factor(n));
      }
    }
    return;
  }

  if (lane != 0u || m >= params.rows) {
    return;
  }
  for (var j = 0u; j < nb; j++) {
    let n = n0 + j;
    put(n * params.y_stride + params.out_offset + m, s[j] * row_factor(n));
  }
}

// alpha · s(n): the constant factor times the row scale.
fn row_factor(n: u32) -> f32 {
  var v = params.alpha;
  if (scale_mode() == 1u) {
    v *= row_scale[n];
  } else if (scale_mode() == 2u) {
    v *= 1.0 - row_scale[n];
  }
  return v;
}

// ROPE: rows gm and gm + 1 of the whole matrix — a rotation pair of q or k, rotated at activation row n's
// position, or two values of v or of the rows after it — to y (q and the rows after v) or the KV cache at
// (slot, pos). The matrix layout is gemm_tex.wgsl's ROPE (q and k rows in rotation pairs).
fn rope_pair(n: u32, gm: u32, v_in: vec2<f32>) {
  let row = rows[n];
  let q_rows = params.q_rows;
  let kv = params.kv_dim;
  var v = v_in;
  if (gm < q_rows + kv) {
    let c = cos_sin[row.pos * (params.head_dim / 2u) + (gm % params.head_dim) / 2u];
    v = vec2<f32>(v.x * c.x - v.y * c.y, v.y * c.x + v.x * c.y);
  }
  let cache = (row.slot * params.ctx + row.pos) * kv;
  for (var j = 0u; j < 2u; j++) {
    let m = gm + j;
    if (m - params.out_offset >= params.rows) {
      return;
    }
    let e = select(v.x, v.y, j == 1u);
    if (m < q_rows || m >= q_rows + 2u * kv) {
      y[n * params.y_stride + m] = e;
    } else if (m < q_rows + kv) {
      k_cache[cache + m - q_rows] = e;
    } else {
      v_cache[cache + m - q_rows - kv] = e;
    }
  }
}
