// The decode GEMV on CPU software GPUs (llvmpipe / lavapipe): ONE activation row × a matrix in a read-only
// rgba32uint storage texture laid out as gemm_tex.wgsl reads it (rows padded to 16 bytes, each group of 4
// rows interleaving its rows' 16-byte blocks), x and the RMSNorm weights read through 64 KiB uniform windows:
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
// Bindings: 0 params (as gemm_tex.wgsl but a storage binding; flags: bit 0 accumulate, bits 1-2 row scale,
// bit 5 SWIGLU, bit 6 ROPE), 1 step
// (n_rows 0 or 1), 2 x_uni (x's first 16384 floats; any window under XTEX), 3 w (one part of the matrix), 4 y,
// 5 row_scale, 6 norm_uni (the norm weights' first 16384 floats; any window without NORM), 7 rows, 8 cos_sin,
// 9 k_cache, 10 v_cache (ROPE, as gemm_tex.wgsl), 11 x_tex (x's row as texels of 4 floats under XTEX; any
// rgba32float texture otherwise), 12 best (ARGMAX; any storage buffer otherwise). Needs K ≤ 16384.
// Grid: x = ceil(M / (4 · WG · groups)) (wrapping into z beyond 65535).
requires readonly_and_readwrite_storage_textures;

//! use lib/step.wgsl

override W_DTYPE: u32 = 0u; // 0 f32, 1 f16, 2 bf16, 3 q8, 4 q4 (gemm_tex.wgsl)
override WG: u32 = 8u;
// RMSNorm on the input (flag bit 4 in gemm_tex.wgsl). A pipeline constant here: a matmul without it then reads
// no norm weights at all (branches cost both sides on llvmpipe), and the demo model decoded ~20% faster.
override NORM: bool = false;
// x from binding 11, an rgba32float texture holding x's row (rmsnorm.wgsl writes one, already normalized when
// the matmul has a norm: the host then leaves NORM off), instead of the uniform window. llvmpipe loads a uniform at an index it cannot prove constant lane by lane, a texel with one 16-byte
// load per lane: the demo's LM head (128256 × 128) alone ran 2.6–3.1 ms instead of 3.6–5.3 (kernels/README.md).
override XTEX: bool = false;
// The LM head of a one-row step: each invocation also leaves the (key, index) of its largest output in
// `best` (binding 12, pair params.best_base + invocation), keys and ties as sample.wgsl, whose first pass then
// need not read the logits again. Plain store only (no accumulate, SWIGLU or ROPE: the host checks).
override ARGMAX: bool = false;

struct Params {
  K: u32,
  rows: u32,
  row_stride: u32,
  y_stride: u32,
  out_offset: u32,
  alpha: f32,
  flags: u32,
  eps: f32,
  tex_shift: u32,
  head_dim: u32,
  q_rows: u32,
  kv_dim: u32,
  ctx: u32,
  groups: u32, // 4-row groups per invocation
  best_base: u32, // ARGMAX: this part's first pair in `best`
  pad2: u32,
}

// The parameters come through a storage binding and are copied once into a private variable: lavapipe
// (Mesa 22.3) inlines uniform-buffer values used in loop bounds and branch conditions into the shader and
// recompiles it whenever they change — every dispatch, as each matmul has its own K (measured: 10-15 ms a
// dispatch). Values from storage are never inlined.
@group(0) @binding(0) var<storage, read> params_in: Params;
var<private> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<uniform> x_uni: array<vec4<f32>, 4096>;
@group(0) @binding(3) var w: texture_storage_2d<rgba32uint, read>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> row_scale: array<f32>;
@group(0) @binding(6) var<uniform> norm_uni: array<vec4<f32>, 4096>;
@group(0) @binding(7) var<storage, read> rows: array<Row>;
@group(0) @binding(8) var<storage, read> cos_sin: array<vec2<f32>>;
@group(0) @binding(9) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(10) var<storage, read_write> v_cache: array<f32>;
@group(0) @binding(11) var x_tex: texture_storage_2d<rgba32float, read>;
@group(0) @binding(12) var<storage, read_write> best: array<u32>;

// Weight elements per 16-byte block.
override EPV: u32 = select(select(8u, 4u, W_DTYPE == 0u), select(32u, 16u, W_DTYPE == 3u), W_DTYPE >= 3u);

// Texel i of the part.
fn wblock(i: u32) -> vec4<u32> {
  let mask = (1u << params.tex_shift) - 1u;
  return textureLoad(w, vec2<u32>(i & mask, i >> params.tex_shift));
}

// Word i of a 16-byte block (a select: llvmpipe is slow at dynamic component indices).
fn pick(q: vec4<u32>, i: u32) -> u32 {
  return select(select(q.x, q.y, (i & 3u) == 1u), select(q.z, q.w, (i & 3u) == 3u), (i & 3u) >= 2u);
}

// 16-byte blocks per row: row_stride counts elements (f32, 16-bit) or bytes (quantized).
fn blocks_per_row() -> u32 {
  if (W_DTYPE >= 3u) {
    return params.row_stride / 16u;
  }
  return select(params.row_stride / 8u, params.row_stride / 4u, W_DTYPE == 0u);
}

// Weights 0-3 and 4-7 of a block of f32 (the first 4 only), f16 or bf16 weights.
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
  if (W_DTYPE == 1u) {
    return vec4<f32>(unpack2x16float(q.z), unpack2x16float(q.w));
  }
  return bitcast<vec4<f32>>(vec4<u32>(q.z << 16u, q.z & 0xffff0000u, q.w << 16u, q.w & 0xffff0000u));
}

// Quantized blocks (src/model/quant.ts): weights 8h .. 8h + 3 and 8h + 4 .. 8h + 7, unscaled.
fn qlo(q: vec4<u32>, h: u32) -> vec4<f32> {
  if (W_DTYPE == 3u) {
    let u = pick(q, 2u * h);
    return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(u) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
  }
  return vec4<f32>((vec4<u32>(pick(q, h)) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u)) - 8.0;
}

fn qhi(q: vec4<u32>, h: u32) -> vec4<f32> {
  if (W_DTYPE == 3u) {
    let u = pick(q, 2u * h + 1u);
    return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(u) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
  }
  return vec4<f32>((vec4<u32>(pick(q, h)) >> vec4<u32>(16u, 20u, 24u, 28u)) & vec4<u32>(15u)) - 8.0;
}

// f16 scales of quantization block b of the 4 rows of the group at texel t0: the rows' scale words sit in
// consecutive texels.
fn qscale4(t0: u32, b: u32) -> vec4<f32> {
  let i = ((params.K + 31u) / 32u) * select(4u, 8u, W_DTYPE == 3u) + (b >> 1u); // the word in its row
  let t = t0 + 4u * (i >> 2u);
  let u = vec4<u32>(pick(wblock(t), i), pick(wblock(t + 1u), i), pick(wblock(t + 2u), i), pick(wblock(t + 3u), i));
  return unpack4(select(u & vec4<u32>(0xffffu), u >> vec4<u32>(16u), (b & 1u) == 1u));
}

fn unpack4(h: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(h.x).x, unpack2x16float(h.y).x, unpack2x16float(h.z).x, unpack2x16float(h.w).x);
}

// x elements k .. k + 3 (k a multiple of 4), unmasked.
fn x4(k: u32) -> vec4<f32> {
  if (XTEX) {
    return textureLoad(x_tex, vec2<u32>(k >> 2u, 0u));
  }
  return x_uni[k >> 2u];
}

// norm(x) elements k .. k + 3 (k a multiple of 4) before 1 / RMS; zero past K.
fn xg4(k: u32) -> vec4<f32> {
  let inside = vec4<u32>(k) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.K);
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
    let inside = vec4<u32>(k) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.K);
    let v = select(vec4<f32>(0.0), x4(k), inside);
    ss += v * v;
  }
  return inverseSqrt(((ss.x + ss.y) + (ss.z + ss.w)) / f32(params.K) + params.eps);
}

// Σ_k norm(x)[k] · W[m0 + j, k] for the 4 rows of the group from row m0.
fn dot4(m0: u32) -> vec4<f32> {
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

// The f32 bit pattern as a u32 that sorts like the value, -0 as +0 (sample.wgsl's f2key).
fn f2key(v: f32) -> u32 {
  var b = bitcast<u32>(v);
  if (b == 0x80000000u) {
    b = 0u;
  }
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn silu(g: f32) -> f32 {
  return g / (1.0 + exp(-g));
}

// y[i] = v, or y[i] += v when accumulating (no branch: the old value is read either way).
fn put(i: u32, v: f32) {
  y[i] = select(0.0, y[i], (params.flags & 1u) != 0u) + v;
}

// Part rows m0 .. m0 + 3 of the result, times s (alpha and the row scale), into y (or, under ROPE, y and the
// KV cache).
fn epilogue(m0: u32, sums: vec4<f32>, s: f32) {
  if ((params.flags & 32u) != 0u) {
    // Rows (m0, m0 + 1) and (m0 + 2, m0 + 3) are (gate, up) pairs; m0 and out_offset are even.
    let o = (params.out_offset + m0) / 2u;
    if (m0 + 1u < params.rows) {
      put(o, silu(sums.x) * sums.y * s);
    }
    if (m0 + 3u < params.rows) {
      put(o + 1u, silu(sums.z) * sums.w * s);
    }
    return;
  }
  let v = sums * s;
  if ((params.flags & 64u) != 0u) {
    rope_store(params.out_offset + m0, v);
  } else {
    let o = params.out_offset + m0;
    if (m0 < params.rows) {
      put(o, v.x);
    }
    if (m0 + 1u < params.rows) {
      put(o + 1u, v.y);
    }
    if (m0 + 2u < params.rows) {
      put(o + 2u, v.z);
    }
    if (m0 + 3u < params.rows) {
      put(o + 3u, v.w);
    }
  }
}

// ROPE (gemm_tex.wgsl): rows gm .. gm + 3 of the whole matrix — two rotation pairs of q or k, rotated at the
// row's position, or 4 values of v — to y (q, and rows after v) or the KV cache at (slot, pos).
fn rope_store(gm: u32, v_in: vec4<f32>) {
  let row = rows[0];
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
    let e = select(select(v.x, v.y, j == 1u), select(v.z, v.w, j == 3u), j >= 2u);
    if (m - params.out_offset < params.rows) {
      if (m < q_rows || m >= q_rows + 2u * kv) {
        y[m] = e;
      } else if (m < q_rows + kv) {
        k_cache[cache + m - q_rows] = e;
      } else {
        v_cache[cache + m - q_rows - kv] = e;
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
  params = params_in;
  let last = (params.rows - 1u) / 4u; // the part's last group
  let first = ((wid.x + wid.z * nwg.x) * WG + li) * params.groups;
  if (step.n_rows == 0u || first > last) {
    return;
  }
  let mode = (params.flags >> 1u) & 3u;
  let rs = row_scale[0];
  let scale = params.alpha * select(select(1.0, rs, mode == 1u), 1.0 - rs, mode == 2u);
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
      epilogue(m0, sums, scale);
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
