// The few-row GEMV on CPU software GPUs (llvmpipe / lavapipe): NR activation rows (a DMTD refill block, a
// short prompt chunk) × a matrix in a read-only rgba32uint storage texture laid out as
// lib/weights_texture.wgsl says, every row's x and the RMSNorm weights read through 64 KiB uniform windows:
//   y[n, out_offset + m] (+)= alpha · s(n) · Σ_k norm(x)[n, k] · W[m, k]   for n < step.n_rows, m < params.rows
// with s(n) = 1, row_scale[n] or 1 − row_scale[n] and norm(x) = x · g / RMS(x) per row under NORM.
//
// Why a kernel of its own: gemm_tex.wgsl reads x through storage loads, which llvmpipe makes a loop over the
// lanes (each lane's value inserted through the stack), so 2-8 rows cost 3-7× one row in gemv_tex.wgsl. Here
// x comes through the uniform window — still a scalar load per lane and component, as the index varies with
// the loop, but several times cheaper — or, under XTEX, from a texture of rows that the norm before wrote (a
// texel load for all lanes, cheaper still, and no norm of its own); each load serves 4 · G weight rows; each
// weight block is fetched and decoded once for all NR rows. What an extra row still costs is its
// multiply-adds: llvmpipe has no fused multiply-add (a mul and an add each), and G · NR sums of 4 outgrow the
// registers. As in gemv_tex.wgsl:
// straight-line code (NR and G are pipeline constants, the row loops unroll), a group loop with the same trip
// count on every lane, x past K zeroed by a select (in the tail chunk only), branch-free row scale and
// accumulate, NORM a pipeline constant (1 / RMS from the x loaded for the sums); the epilogue (plain, SWIGLU,
// ROPE with each row's slot and position) follows the flags (lib/gemv_tex_store.wgsl). kernels/README.md has
// the figures.
//
// A dispatch takes activation rows row0 .. row0 + NR − 1 (params.row0: the host covers a step of more rows
// than one invocation holds with several dispatches, row groups, each with its own params and x window).
//
// Bindings: 0 params (MatmulParams through a storage binding, lib/gemv_tex_io.wgsl), 1 step (n_rows), 2 x_uni
// (16384 floats of x holding rows row0 .. row0 + NR − 1 from element params.x_base),
// 3 w (one part of the matrix), 4 y (f32 [N, y_stride]), 5 row_scale, 6 norm_uni (the norm weights' first
// 16384 floats; any window without NORM), 7 rows, 8 cos_sin, 9 k_cache, 10 v_cache (ROPE,
// lib/matmul_rope.wgsl), 11 x_tex (XTEX: activation row r as texture row r, texels of 4 floats, zero past K;
// any rgba32float texture otherwise). Needs x_base + NR · K ≤ 16384 (rows ≥ step.n_rows are read, never
// stored).
// Weight format: override W_DTYPE (lib/weight_decode.wgsl).
// Grid: x = ceil(M / (4 · WG · groups)) (wrapping into z beyond 65535); every invocation takes all NR rows.

requires readonly_and_readwrite_storage_textures;

//! use lib/gemv_tex_io.wgsl
//! use lib/gemv_tex_store.wgsl

override WG: u32 = 8u;
// Activation rows per invocation, 1 ..= 8: the row group's rows at most (the host picks the smallest that
// holds them; rows past step.n_rows cost their arithmetic but store nothing).
override NR: u32 = 4u;

// RMSNorm on the input, a pipeline constant as in gemv_tex.wgsl: without it no norm weights are read.
override NORM: bool = false;
// K % 4 ≠ 0: row n starts mid-vec4 in the window, so each 4 elements come from two loads and a shift.
override UNALIGNED: bool = false;
// x from the row texture x_tex, already normalized where the matmul has a norm (NORM and UNALIGNED then off):
// on lavapipe 4 rows of BF16 3072 × 2048 ran 1.28× faster than with the norm fused and x from the window.
override XTEX: bool = false;

@group(0) @binding(11) var x_tex: texture_storage_2d<rgba32float, read>;

const MAXNR: u32 = 8u;
// Groups of 4 weight rows per pass over K: each x load serves 16 weight rows (lavapipe, BF16 4096 × 1024, 4
// rows: 1.93× a one-row step's CPU time with 4 groups a pass, 2.18× with 2, 3.0× with 1). An invocation takes
// max(params.groups, G) groups. Written out group by group (Sums.a0 .. a3), not as a loop over an array of
// groups: that loop, too big for NIR to unroll, ran 2-4× slower (indexed private arrays are per-lane memory
// on llvmpipe).
const G: u32 = 4u;
// One vec4 per activation row: x or norm(x) at 4 columns, a group's sums, Σ x².
alias Rows = array<vec4<f32>, MAXNR>;
// A group's 4 texels of one block (one per weight row).
alias Blocks = array<vec4<u32>, 4>;

// x row row0 + n, elements k .. k + 3 (k a multiple of 4), unmasked.
fn xr4(n: u32, k: u32) -> vec4<f32> {
  if (XTEX) {
    return textureLoad(x_tex, vec2<u32>(k >> 2u, params.row0 + n));
  }
  let i = params.x_base + n * params.K + k;
  let a = x_uni[i >> 2u];
  if (!UNALIGNED) {
    return a;
  }
  // A uniform funnel shift: selects, for llvmpipe is slow at dynamic component indices.
  let b = x_uni[(i >> 2u) + 1u];
  let s = i & 3u;
  let lo = select(a, vec4<f32>(a.yzw, b.x), s == 1u);
  let hi = select(vec4<f32>(a.zw, b.xy), vec4<f32>(a.w, b.xyz), s == 3u);
  return select(lo, hi, s >= 2u);
}

// Every row's norm(x) at elements k .. k + 3 before 1 / RMS, into xs (zero past K in the tail chunk); under
// NORM adds the squares of x to ss (1 / RMS factors out of the sums, so it comes from the loads made anyway).
fn load_rows(k: u32, tail: bool, xs: ptr<function, Rows>, ss: ptr<function, Rows>) {
  var g = vec4<f32>(1.0);
  if (NORM) {
    g = norm_uni[k >> 2u];
  }
  for (var n = 0u; n < NR; n++) {
    var v = xr4(n, k);
    if (tail) {
      v = select(vec4<f32>(0.0), v, inside4(k));
    }
    if (NORM) {
      (*ss)[n] += v * v;
    }
    (*xs)[n] = v * g;
  }
}

// Block c of the group whose first texel is t0.
fn blocks(t0: u32, c: u32) -> Blocks {
  let t = t0 + 4u * c;
  return Blocks(wblock(t), wblock(t + 1u), wblock(t + 2u), wblock(t + 3u));
}

// acc[n] += xa[n] · wa (+ xb[n] · wb but for f32) for every row n; wa, wb: a group's weights, a weight row
// per column. Written as each x element times the 4 weight rows' (a transpose is free in llvmpipe's per-lane
// layout): ~10% faster there than v * m, which it computes as 4 dot products.
fn mac(acc: ptr<function, Rows>, xa: ptr<function, Rows>, xb: ptr<function, Rows>, wa_cols: mat4x4<f32>, wb_cols: mat4x4<f32>) {
  let wa = transpose(wa_cols);
  let wb = transpose(wb_cols);
  for (var n = 0u; n < NR; n++) {
    let p = (*xa)[n];
    var v = (*acc)[n];
    v = fma(vec4<f32>(p.x), wa[0], v);
    v = fma(vec4<f32>(p.y), wa[1], v);
    v = fma(vec4<f32>(p.z), wa[2], v);
    v = fma(vec4<f32>(p.w), wa[3], v);
    if (W_DTYPE != 0u) {
      let r = (*xb)[n];
      v = fma(vec4<f32>(r.x), wb[0], v);
      v = fma(vec4<f32>(r.y), wb[1], v);
      v = fma(vec4<f32>(r.z), wb[2], v);
      v = fma(vec4<f32>(r.w), wb[3], v);
    }
    (*acc)[n] = v;
  }
}

// A group's f32 / f16 / bf16 block q against every row's x.
fn mac_dense(acc: ptr<function, Rows>, xa: ptr<function, Rows>, xb: ptr<function, Rows>, q: Blocks) {
  let wa = mat4x4<f32>(lo4(q[0]), lo4(q[1]), lo4(q[2]), lo4(q[3]));
  let wb = mat4x4<f32>(hi4(q[0]), hi4(q[1]), hi4(q[2]), hi4(q[3]));
  mac(acc, xa, xb, wa, wb);
}

// Weights 8h .. 8h + 7 of a group's quantized block q (unscaled) against every row's x.
fn mac_quant(acc: ptr<function, Rows>, xa: ptr<function, Rows>, xb: ptr<function, Rows>, q: Blocks, h: u32) {
  let wa = mat4x4<f32>(qlo(q[0], h), qlo(q[1], h), qlo(q[2], h), qlo(q[3], h));
  let wb = mat4x4<f32>(qhi(q[0], h), qhi(q[1], h), qhi(q[2], h), qhi(q[3], h));
  mac(acc, xa, xb, wa, wb);
}

// acc[n] += s[n] · d for every row (d: a group's block scales).
fn add_scaled(acc: ptr<function, Rows>, s: ptr<function, Rows>, d: vec4<f32>) {
  for (var n = 0u; n < NR; n++) {
    (*acc)[n] += (*s)[n] * d;
  }
}

// The sums of G groups (first texels t0) over every row, and Σ x² of every row (NORM).
struct Sums {
  a0: Rows,
  a1: Rows,
  a2: Rows,
  a3: Rows,
  ss: Rows,
}

// Chunk c (EPV columns) of the groups at t0 into r, x masked past K when `tail`.
fn chunk(r: ptr<function, Sums>, t0: vec4<u32>, c: u32, tail: bool) {
  let k = c * EPV;
  var xa: Rows;
  var xb: Rows;
  var ss = (*r).ss;
  var a0 = (*r).a0;
  var a1 = (*r).a1;
  var a2 = (*r).a2;
  var a3 = (*r).a3;
  let q0 = blocks(t0.x, c);
  let q1 = blocks(t0.y, c);
  let q2 = blocks(t0.z, c);
  let q3 = blocks(t0.w, c);
  if (W_DTYPE >= 3u) {
    var s0: Rows;
    var s1: Rows;
    var s2: Rows;
    var s3: Rows;
    for (var h = 0u; h < EPV / 8u; h++) {
      load_rows(k + 8u * h, tail, &xa, &ss);
      load_rows(k + 8u * h + 4u, tail, &xb, &ss);
      mac_quant(&s0, &xa, &xb, q0, h);
      mac_quant(&s1, &xa, &xb, q1, h);
      mac_quant(&s2, &xa, &xb, q2, h);
      mac_quant(&s3, &xa, &xb, q3, h);
    }
    add_scaled(&a0, &s0, qscale4(t0.x, k >> 5u));
    add_scaled(&a1, &s1, qscale4(t0.y, k >> 5u));
    add_scaled(&a2, &s2, qscale4(t0.z, k >> 5u));
    add_scaled(&a3, &s3, qscale4(t0.w, k >> 5u));
  } else {
    load_rows(k, tail, &xa, &ss);
    if (W_DTYPE != 0u) {
      load_rows(k + 4u, tail, &xb, &ss);
    }
    mac_dense(&a0, &xa, &xb, q0);
    mac_dense(&a1, &xa, &xb, q1);
    mac_dense(&a2, &xa, &xb, q2);
    mac_dense(&a3, &xa, &xb, q3);
  }
  *r = Sums(a0, a1, a2, a3, ss);
}

// One pass over K for the groups at t0: the whole chunks unmasked, then the tail chunk (K not a multiple of
// EPV) with x masked past K.
fn pass_over_k(t0: vec4<u32>) -> Sums {
  var r: Sums;
  let whole = params.K / EPV;
  for (var c = 0u; c < whole; c++) {
    chunk(&r, t0, c, false);
  }
  for (var c = whole; c < (params.K + EPV - 1u) / EPV; c++) {
    chunk(&r, t0, c, true);
  }
  return r;
}

// Stores a group's sums for every row (a: 1 / RMS, s: alpha · s(n)), when the group is live: activation row
// row0 + n.
fn store_group(m0: u32, live: bool, acc: Rows, a: array<f32, MAXNR>, s: array<f32, MAXNR>) {
  for (var n = 0u; n < NR; n++) {
    let row = params.row0 + n;
    if (live && row < step.n_rows) {
      epilogue(row, m0, acc[n] * a[n], s[n]);
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
  let groups = max(params.groups, G);
  let first = ((wid.x + wid.z * nwg.x) * WG + li) * groups;
  if (step.n_rows <= params.row0 || first > last) {
    return;
  }
  var scale: array<f32, MAXNR>; // alpha · s(n)
  for (var n = 0u; n < NR; n++) {
    scale[n] = scale_no_branch(params.row0 + n);
  }
  // The same trip count on every lane: a lane past the part repeats the last group and stores nothing.
  for (var p = 0u; p < groups; p += G) {
    let i = vec4<u32>(p) + vec4<u32>(0u, 1u, 2u, 3u);
    let live = i < vec4<u32>(groups) & vec4<u32>(first) + i <= vec4<u32>(last);
    let m0 = min(vec4<u32>(first) + i, vec4<u32>(last)) * 4u;
    let r = pass_over_k(m0 * blocks_per_row());
    // 1 / RMS, applied before SWIGLU's silu (so apart from the row scale).
    var a: array<f32, MAXNR>;
    for (var n = 0u; n < NR; n++) {
      let q = r.ss[n];
      a[n] = select(1.0, inverseSqrt(((q.x + q.y) + (q.z + q.w)) / f32(params.K) + params.eps), NORM);
    }
    store_group(m0.x, live.x, r.a0, a, scale);
    store_group(m0.y, live.y, r.a1, a, scale);
    store_group(m0.z, live.z, r.a2, a, scale);
    store_group(m0.w, live.w, r.a3, a, scale);
  }
}
