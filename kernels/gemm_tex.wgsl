// Matmul with the weights in a read-only rgba32uint storage texture, for CPU software GPUs (llvmpipe /
// lavapipe), any number of activation rows. Each invocation computes NT activation rows × params.groups groups
// of 4 weight rows straight from memory (no workgroup memory or barrier — barriers are costly there): each
// weight block fetched serves NT activation rows, and x, the same for every lane, is a uniform load. Texels
// because llvmpipe fetches them several times faster than storage words whose addresses differ across SIMD
// lanes (and storage-texture loads ~1.5x faster than sampled-texture ones). Flags as gemm.wgsl (NORM, SWIGLU)
// plus ROPE below:
//   y[n, out_offset + m] (+)= alpha · s(n) · Σ_k x[n, k] · W[m, k]    for n < step.n_rows, m < params.rows
//
// Bindings: 0 params (uniform MatmulParams), 1 step, 2 x (f32 [N, K]; buffer size a multiple of 16 bytes),
// 3 w (one part of a matrix as texels, laid out as lib/weights_texture.wgsl says: each group of 4 rows
// interleaves its rows' 16-byte blocks, so an invocation walks its texels in order), 4 y (f32 [N, y_stride]),
// 5 row_scale (f32 [N]), 6 norm_w (f32 [K]), 7 rows ({slot, pos} per activation row), 8 cos_sin
// ([ctx, head_dim / 2]), 9 k_cache, 10 v_cache (this layer's, [slots, ctx, kv_dim]).
// Weight format: override W_DTYPE (lib/weight_decode.wgsl).
//
// Fusion bit 6 ROPE (the attention projections, lib/matmul_rope.wgsl): each invocation's 4 rows are two whole
// rotation pairs, so it rotates them at the activation row's position itself. Needs head_dim, q_rows and
// kv_dim multiples of 4.
// Grid: x = ceil(M / (4 · WG · groups)) (wrapping into z beyond 65535), y = ceil(N / NT).

requires readonly_and_readwrite_storage_textures;

//! use lib/matmul_params.wgsl
//! use lib/matmul_flags.wgsl
//! use lib/matmul_bindings.wgsl
//! use lib/x_load.wgsl
//! use lib/weights_texture.wgsl
//! use lib/weight_element.wgsl
//! use lib/matmul_epilogue.wgsl

override WG: u32 = 8u;
override NT: u32 = 8u; // activation rows per invocation, 1 ..= 8

@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(6) var<storage, read> norm_w: array<f32>;

const MAXNT: u32 = 8u;

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

// Scales of block b of the 4 weight rows from m0 (a multiple of 4).
fn qscale4(m0: u32, b: u32) -> vec4<f32> {
  return vec4<f32>(qscale(m0, b), qscale(m0 + 1u, b), qscale(m0 + 2u, b), qscale(m0 + 3u, b));
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
