// The tiled f32 product of the training matmuls (mm_nt, mm_nn, mm_tn):
//   c[i, j] (+)= Σ_l A(i, l) · B(j, l)    for i < rows, j < cols, l < depth, c row-major [rows, cols].
// A and B live in `a` and `b` in one of two layouts each, which the kernel picks by defining
//   fn stage(li: u32, i0: u32, j0: u32, l0: u32)
// as a call of one `stage_a_*` and one `stage_b_*` below: "_l" when the operand is row-major with l contiguous
// (A(i, l) = a[i · depth + l]), "_i" / "_j" when l indexes its rows (A(i, l) = a[l · rows + i],
// B(j, l) = b[l · cols + j]).
//
// Bindings: 0 params (uniform MmParams), 1 a (f32 as vec4 words), 2 b (16-byte words: 4 f32 or 8 16-bit values,
// see B_DTYPE; buffers a multiple of 16 bytes), 3 c (f32, read-write: c is read back only when accumulating).
// Override B_DTYPE (src/model/dtype.ts's DTYPE_CODE): 0 b holds f32; 1 f16 or 2 bf16, two to a u32 (element 2i in
// the low half of word i, lib/packed16.wgsl), widened to f32 as they are staged — a frozen weight kept in its
// checkpoint's 16-bit dtype (mm_nt and mm_nn, where b = W; mm_tn's b is an activation, always f32).
// Override ALIGNED: every operand's contiguous stride (depth, rows or cols as used) is a multiple of 4, so 4
// elements load as one vec4 (otherwise from the two vec4 words that hold them; a structure choice, one pipeline
// per kernel in a model).
//
// WG = 256 threads own a 128 (i) × 128 (j) tile of c, 8 × 8 each (rows 4 ty .. + 4 and 64 + 4 ty .. + 4, columns
// likewise from 4 tx); l is staged BK = 16 at a time in workgroup memory, both operands transposed to [l][128]
// with 4 consecutive i (or j) per vec4 (16 KiB). Grid: (ceil(cols / 128), ceil(rows / 128)).
// On lavapipe the staging's storage loads cost ~80% of the time (without them the same loop runs ~18 GFLOP/s):
// llvmpipe loads storage words lane by lane; kernels/README.md "Training kernels" has the figures. The depth loop
// is the only loop that repeats (staging and the 16 depth steps are written out): llvmpipe ends an
// invocation's loops after 65535 iterations in all.

//! use lib/packed16.wgsl

struct MmParams {
  rows: u32,
  cols: u32,
  depth: u32,
  flags: u32, // bit 0: c += result rather than c = result
}

@group(0) @binding(0) var<uniform> params: MmParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

override ALIGNED: bool = false;
override B_DTYPE: u32 = 0u;

const WG: u32 = 256u;
const TILE: u32 = 128u;
const BK: u32 = 16u;
// Tiles, transposed: [l][i or j], 4 consecutive i (or j) per vec4; 32 vec4 per l.
var<workgroup> at: array<vec4<f32>, 512>; // BK × 128 i
var<workgroup> bt: array<vec4<f32>, 512>; // BK × 128 j

// Component k of v (a select: a dynamic component index is a slow path on llvmpipe).
fn pick(v: vec4<f32>, k: u32) -> f32 {
  return select(select(v.x, v.y, k == 1u), select(v.z, v.w, k == 3u), k >= 2u);
}

// Element o (< 8) of the 8 in words u, w.
fn pick8(u: vec4<f32>, w: vec4<f32>, o: u32) -> f32 {
  return select(pick(u, o), pick(w, o - 4u), o >= 4u);
}

// 4 elements from flat index e, from the two words that hold them (word indices clamped into the buffer).
fn join4(u: vec4<f32>, w: vec4<f32>, e: u32) -> vec4<f32> {
  let o = e & 3u;
  return vec4<f32>(pick8(u, w, o), pick8(u, w, o + 1u), pick8(u, w, o + 2u), pick8(u, w, o + 3u));
}

// The first n of 4 elements, zeros after.
fn first(v: vec4<f32>, n: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), v, vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(n));
}

// 4 elements of a from flat index e (a multiple of 4 when ALIGNED); the first `n` of them, zeros after. No
// loops (llvmpipe stops a kernel's loops after 65535 iterations in all, so a long depth loop must hold none),
// and loads are clamped into the buffer rather than skipped: a load under a lane-varying branch cost lavapipe
// 15–20%.
fn a4(e: u32, n: u32) -> vec4<f32> {
  let last = arrayLength(&a) - 1u;
  let i = min(e >> 2u, last);
  if (ALIGNED) {
    return first(a[i], n);
  }
  return first(join4(a[i], a[min(i + 1u, last)], e), n);
}

fn b4(e: u32, n: u32) -> vec4<f32> {
  let last = arrayLength(&b) - 1u;
  if (B_DTYPE != 0u) {
    return first(b4_16(e, last), n);
  }
  let i = min(e >> 2u, last);
  if (ALIGNED) {
    return first(bitcast<vec4<f32>>(b[i]), n);
  }
  return first(join4(bitcast<vec4<f32>>(b[i]), bitcast<vec4<f32>>(b[min(i + 1u, last)]), e), n);
}

// u32 k (< 8) of the 8 in words u, w.
fn pick8_u(u: vec4<u32>, w: vec4<u32>, k: u32) -> u32 {
  let v = select(u, w, k >= 4u);
  let o = k & 3u;
  return select(select(v.x, v.y, o == 1u), select(v.z, v.w, o == 3u), o >= 2u);
}

// 16-bit b: 4 elements from flat index e, 8 to a word (index clamped like a4's). ALIGNED: one half of a word.
// Else the u32 p = (e % 8) / 2 .. p + 2 of the two words that hold them, shifted down a half when e is odd.
fn b4_16(e: u32, last: u32) -> vec4<f32> {
  let i = min(e >> 3u, last);
  let q = b[i];
  if (ALIGNED) {
    return unpack16x4(select(q.xy, q.zw, (e & 4u) != 0u), B_DTYPE);
  }
  let r = b[min(i + 1u, last)];
  let p = (e & 7u) >> 1u;
  let u0 = pick8_u(q, r, p);
  let u1 = pick8_u(q, r, p + 1u);
  let u2 = pick8_u(q, r, p + 2u);
  let odd = vec2<u32>((u0 >> 16u) | (u1 << 16u), (u1 >> 16u) | (u2 << 16u));
  return unpack16x4(select(vec2<u32>(u0, u1), odd, (e & 1u) == 1u), B_DTYPE);
}

// How many of 4 elements from index s lie below `end`.
fn live(s: u32, end: u32) -> u32 {
  return select(0u, min(end - s, 4u), s < end);
}

// "_l" staging: thread li loads l0 + kk .. + 8 of tile row r = li / 2 (kk = 8 · (li % 2)) and scatters them
// into the transposed tile.
fn put_l(tile_a: bool, r: u32, kk: u32, p: vec4<f32>, q: vec4<f32>) {
  let col = r >> 2u;
  let e = r & 3u;
  let t = kk * 32u + col;
  // Written out, not looped: see a4.
  if (tile_a) {
    at[t][e] = p.x;
    at[t + 32u][e] = p.y;
    at[t + 64u][e] = p.z;
    at[t + 96u][e] = p.w;
    at[t + 128u][e] = q.x;
    at[t + 160u][e] = q.y;
    at[t + 192u][e] = q.z;
    at[t + 224u][e] = q.w;
  } else {
    bt[t][e] = p.x;
    bt[t + 32u][e] = p.y;
    bt[t + 64u][e] = p.z;
    bt[t + 96u][e] = p.w;
    bt[t + 128u][e] = q.x;
    bt[t + 160u][e] = q.y;
    bt[t + 192u][e] = q.z;
    bt[t + 224u][e] = q.w;
  }
}

fn stage_a_l(li: u32, i0: u32, l0: u32) {
  let r = li >> 1u;
  let kk = (li & 1u) * 8u;
  let l = l0 + kk;
  let i = i0 + r;
  let d = params.depth;
  let n = select(0u, d, i < params.rows);
  let e = i * d + l;
  put_l(true, r, kk, a4(e, live(l, n)), a4(e + 4u, live(l + 4u, n)));
}

fn stage_b_l(li: u32, j0: u32, l0: u32) {
  let r = li >> 1u;
  let kk = (li & 1u) * 8u;
  let l = l0 + kk;
  let j = j0 + r;
  let d = params.depth;
  let n = select(0u, d, j < params.cols);
  let e = j * d + l;
  put_l(false, r, kk, b4(e, live(l, n)), b4(e + 4u, live(l + 4u, n)));
}

// "_i" / "_j" staging: thread li loads 8 consecutive i (or j) of tile row l = li / 16, two whole vec4 of the
// tile.
fn stage_a_i(li: u32, i0: u32, l0: u32) {
  let l = l0 + (li >> 4u);
  let i = i0 + (li & 15u) * 8u;
  let R = params.rows;
  let n = select(0u, R, l < params.depth);
  let e = l * R + i;
  let t = (li >> 4u) * 32u + (li & 15u) * 2u;
  at[t] = a4(e, live(i, n));
  at[t + 1u] = a4(e + 4u, live(i + 4u, n));
}

fn stage_b_j(li: u32, j0: u32, l0: u32) {
  let l = l0 + (li >> 4u);
  let j = j0 + (li & 15u) * 8u;
  let C = params.cols;
  let n = select(0u, C, l < params.depth);
  let e = l * C + j;
  let t = (li >> 4u) * 32u + (li & 15u) * 2u;
  bt[t] = b4(e, live(j, n));
  bt[t + 1u] = b4(e + 4u, live(j + 4u, n));
}

// c[i, j0 .. j0 + 4] (+)= v, within bounds.
fn store4(i: u32, j0: u32, v: vec4<f32>) {
  if (i >= params.rows) {
    return;
  }
  let add = (params.flags & 1u) != 0u;
  let o = i * params.cols;
  for (var k = 0u; k < min(params.cols - min(j0, params.cols), 4u); k++) {
    c[o + j0 + k] = v[k] + select(0.0, c[o + j0 + k], add);
  }
}

// 4 rows × 8 columns of products: acc[r] (column block 0) and acc[4 + r] (block 1) += x[r] · (y0, y1).
struct Acc {
  a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>,
  b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>,
}

fn fma4x8(acc: Acc, x: vec4<f32>, y0: vec4<f32>, y1: vec4<f32>) -> Acc {
  return Acc(
    acc.a0 + x.x * y0, acc.a1 + x.y * y0, acc.a2 + x.z * y0, acc.a3 + x.w * y0,
    acc.b0 + x.x * y1, acc.b1 + x.y * y1, acc.b2 + x.z * y1, acc.b3 + x.w * y1,
  );
}

fn store4x8(acc: Acc, i: u32, j: u32) {
  store4(i, j, acc.a0);
  store4(i + 1u, j, acc.a1);
  store4(i + 2u, j, acc.a2);
  store4(i + 3u, j, acc.a3);
  store4(i, j + 64u, acc.b0);
  store4(i + 1u, j + 64u, acc.b1);
  store4(i + 2u, j + 64u, acc.b2);
  store4(i + 3u, j + 64u, acc.b3);
}

var<private> top: Acc;
var<private> bottom: Acc;

// Depth k of the staged tiles into the thread's 8 × 8 sums.
fn mac(k: u32, tx: u32, ty: u32) {
  let y0 = bt[k * 32u + tx];
  let y1 = bt[k * 32u + 16u + tx];
  top = fma4x8(top, at[k * 32u + ty], y0, y1);
  bottom = fma4x8(bottom, at[k * 32u + 16u + ty], y0, y1);
}

// The 128 × 128 tile (bi, bj) of c for thread li: rows i0 + 4 ty .. + 4 and i0 + 64 + 4 ty .. + 4, columns
// likewise from 4 tx (ty = li / 16, tx = li % 16): strided so that a warp's reads of the tiles do not collide
// in the banks of workgroup memory. The depth loop is the only loop that runs per staged block (the 16 steps
// are written out), so llvmpipe's 65535 iterations reach a depth of ~1M.
fn mm_tile(li: u32, bi: u32, bj: u32) {
  let tx = li & 15u;
  let ty = li >> 4u;
  let i0 = bi * TILE;
  let j0 = bj * TILE;
  let zero = vec4<f32>(0.0);
  top = Acc(zero, zero, zero, zero, zero, zero, zero, zero);
  bottom = top;
  for (var l0 = 0u; l0 < params.depth; l0 += BK) {
    stage(li, i0, j0, l0);
    workgroupBarrier();
    mac(0u, tx, ty);
    mac(1u, tx, ty);
    mac(2u, tx, ty);
    mac(3u, tx, ty);
    mac(4u, tx, ty);
    mac(5u, tx, ty);
    mac(6u, tx, ty);
    mac(7u, tx, ty);
    mac(8u, tx, ty);
    mac(9u, tx, ty);
    mac(10u, tx, ty);
    mac(11u, tx, ty);
    mac(12u, tx, ty);
    mac(13u, tx, ty);
    mac(14u, tx, ty);
    mac(15u, tx, ty);
    workgroupBarrier();
  }
  store4x8(top, i0 + 4u * ty, j0 + 4u * tx);
  store4x8(bottom, i0 + 64u + 4u * ty, j0 + 4u * tx);
}
