// Tiled GEMM for many activation rows (prefill):
//   y[n, out_offset + m] (+)= alpha · s(n) · Σ_k x[n, k] · W[m, k]    for n < step.n_rows, m < params.rows
// where s(n) = 1, row_scale[n] or 1 − row_scale[n] (flags bits 1-2: 0, 1, 2). Any N, M, K.
// Fusions (flags, as matmul.wgsl): bit 4 NORM reads x through RMSNorm (x · rsqrt(mean(x²) + eps) · norm_w);
// bit 5 SWIGLU: weight rows interleave gate and up (row 2i gate i, row 2i + 1 up i) and output column
// (out_offset + m) / 2 gets silu(gate) · up — the MLP's gate, up and SiLU in one pass.
// bit 6 ROPE: the attention projection with q and k rows in rotation pairs, rotated and written to y and the
// KV cache as gemm_tex.wgsl's ROPE (each thread's 4 output columns are two whole pairs).
//
// Bindings (as matmul.wgsl): 0 params (uniform), 1 step (uniform), 2 x (f32 [N, K]; buffer size a multiple
// of 16 bytes), 3 w (one part of a matrix), 4 y (f32 [N, y_stride]), 5 row_scale (f32 [N]), 6 norm_w (f32 [K]),
// 7-10 ROPE's rows, cos_sin, k_cache, v_cache.
//
// WG = 256 threads own a 64 (n) × 64 (m) output tile, 4 × 4 per thread; K is staged 32 at a time in workgroup
// memory (x and decoded W, 16 KiB). Grid: x = ceil(M / 64) (wrapping into z beyond 65535), y = ceil(N / 64).
// For weights in storage buffers (real GPUs); texture weights (software GPUs) take gemm_tex.wgsl.

//! use lib/step.wgsl

override W_DTYPE: u32 = 0u; // 0 f32, 1 f16, 2 bf16, 3 q8, 4 q4 (quantized: see qscale)
const WG: u32 = 256u;

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
@group(0) @binding(6) var<storage, read> norm_w: array<f32>;
@group(0) @binding(7) var<storage, read> rows: array<Row>;
@group(0) @binding(8) var<storage, read> cos_sin: array<vec2<f32>>;
@group(0) @binding(9) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(10) var<storage, read_write> v_cache: array<f32>;

const BK: u32 = 32u;
// Tiles, transposed: [k][n or m], 4 consecutive n (or m) per vec4.
var<workgroup> xt: array<vec4<f32>, 512>; // BK × 64
var<workgroup> wt: array<vec4<f32>, 512>; // BK × 64
var<workgroup> row_ss: array<f32, 256>; // NORM, tiled: Σx² partials, 4 threads per tile row

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

fn x4(i: u32) -> vec4<f32> {
  if (x_aligned()) {
    return x[i >> 2u];
  }
  return vec4<f32>(xs(i), xs(i + 1u), xs(i + 2u), xs(i + 3u));
}

fn inv_rms(ss: f32) -> f32 {
  return inverseSqrt(ss / f32(params.K) + params.eps);
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

// Stores a · acc (component j: column m0 + j; a = 1 / RMS under NORM) into activation row n.
fn store4(n: u32, m0: u32, acc_in: vec4<f32>, a: f32) {
  if (n >= step.n_rows) {
    return;
  }
  var s = params.alpha;
  if (scale_mode() == 1u) {
    s *= row_scale[n];
  } else if (scale_mode() == 2u) {
    s *= 1.0 - row_scale[n];
  }
  let acc = acc_in * a;
  if (rope()) {
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

// ROPE: rows gm .. gm + 3 of the whole matrix (two rotation pairs of one head, or 4 values of v or of the rows
// after it) of activation row n, as gemm_tex.wgsl's rope_store.
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
    if (m < q_rows || m >= q_rows + 2u * kv) {
      y[n * params.y_stride + m] = v[j];
    } else if (m < q_rows + kv) {
      k_cache[cache + m - q_rows] = v[j];
    } else {
      v_cache[cache + m - q_rows - kv] = v[j];
    }
  }
}

// Loads x[n, k .. k + 8] (zeros outside the matrix; × the RMSNorm weights under NORM) into the x tile at
// column r, rows kk .. kk + 8. Returns the sum of squares of the raw values (NORM).
fn stage_x(n: u32, k: u32, r: u32, kk: u32) -> f32 {
  let K = params.K;
  var a = vec4<f32>(0.0);
  var b = vec4<f32>(0.0);
  if (n < step.n_rows) {
    let i = n * K + k;
    if (k + 8u <= K) {
      a = x4(i);
      b = x4(i + 4u);
    } else {
      for (var j = 0u; j < 4u; j++) {
        if (k + j < K) {
          a[j] = xs(i + j);
        }
        if (k + 4u + j < K) {
          b[j] = xs(i + 4u + j);
        }
      }
    }
  }
  let ss = dot(a, a) + dot(b, b);
  if (has_norm()) {
    for (var j = 0u; j < 4u; j++) {
      if (k + j < K) {
        a[j] *= norm_w[k + j];
      }
      if (k + 4u + j < K) {
        b[j] *= norm_w[k + 4u + j];
      }
    }
  }
  let c = r >> 2u;
  let e = r & 3u;
  for (var j = 0u; j < 4u; j++) {
    xt[(kk + j) * 16u + c][e] = a[j];
    xt[(kk + 4u + j) * 16u + c][e] = b[j];
  }
  return ss;
}

// Loads W[m, k .. k + 8] (zeros outside the part) into the W tile at column r, rows kk .. kk + 8.
fn stage_w(m: u32, k: u32, r: u32, kk: u32) {
  let K = params.K;
  var a = vec4<f32>(0.0);
  var b = vec4<f32>(0.0);
  if (m < params.rows) {
    let word0 = m * words_per_row();
    if (k + 8u <= K) {
      if (W_DTYPE == 0u) {
        a = bitcast<vec4<f32>>(w[(word0 + k) >> 2u]);
        b = bitcast<vec4<f32>>(w[((word0 + k) >> 2u) + 1u]);
      } else if (W_DTYPE >= 3u) {
        // 8 weights of one block (k is a multiple of 8).
        let d = qscale(word0, k >> 5u);
        if (W_DTYPE == 3u) {
          a = q8x4(word(word0 + (k >> 2u))) * d;
          b = q8x4(word(word0 + (k >> 2u) + 1u)) * d;
        } else {
          let u = word(word0 + (k >> 3u));
          a = q4x4(u, 0u) * d;
          b = q4x4(u, 16u) * d;
        }
      } else {
        let q = w[(word0 + (k >> 1u)) >> 2u];
        a = lo4(q);
        b = hi4(q);
      }
    } else {
      for (var j = 0u; j < 4u; j++) {
        if (k + j < K) {
          a[j] = welem(word0, k + j);
        }
        if (k + 4u + j < K) {
          b[j] = welem(word0, k + 4u + j);
        }
      }
    }
  }
  let c = r >> 2u;
  let e = r & 3u;
  for (var j = 0u; j < 4u; j++) {
    wt[(kk + j) * 16u + c][e] = a[j];
    wt[(kk + 4u + j) * 16u + c][e] = b[j];
  }
}

fn tiled(li: u32, bm: u32, bn: u32) {
  let tx = li & 15u; // 4 output columns m
  let ty = li >> 4u; // 4 activation rows n
  let m_tile = bm * 64u;
  let n_tile = bn * 64u;
  // Staging: thread li loads 8 consecutive k of x row (li / 4) and of W row (li / 4).
  let r = li >> 2u;
  let kk = (li & 3u) * 8u;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var ss = 0.0;
  for (var k0 = 0u; k0 < params.K; k0 += BK) {
    ss += stage_x(n_tile + r, k0 + kk, r, kk);
    stage_w(m_tile + r, k0 + kk, r, kk);
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let a = xt[k * 16u + ty];
      let b = wt[k * 16u + tx];
      acc0 += a.x * b;
      acc1 += a.y * b;
      acc2 += a.z * b;
      acc3 += a.w * b;
    }
    workgroupBarrier();
  }
  // NORM: tile row t's sum of squares is spread over the 4 threads that staged it.
  var a = vec4<f32>(1.0);
  if (has_norm()) {
    row_ss[li] = ss;
    workgroupBarrier();
    for (var i = 0u; i < 4u; i++) {
      let t = (ty * 4u + i) * 4u;
      a[i] = inv_rms((row_ss[t] + row_ss[t + 1u]) + (row_ss[t + 2u] + row_ss[t + 3u]));
    }
  }
  let n = n_tile + ty * 4u;
  let m = m_tile + tx * 4u;
  store4(n, m, acc0, a.x);
  store4(n + 1u, m, acc1, a.y);
  store4(n + 2u, m, acc2, a.z);
  store4(n + 3u, m, acc3, a.w);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) li: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  tiled(li, wid.x + wid.z * nwg.x, wid.y);
}
