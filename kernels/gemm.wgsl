// Tiled GEMM for many activation rows (prefill):
//   y[n, out_offset + m] (+)= alpha · s(n) · Σ_k x[n, k] · W[m, k]    for n < step.n_rows, m < params.rows
// where s(n) = 1, row_scale[n] or 1 − row_scale[n] (flags bits 1-2: 0, 1, 2). Any N, M, K.
// Fusions (flags, as matmul.wgsl): bit 4 NORM reads x through RMSNorm (x · rsqrt(mean(x²) + eps) · norm_w);
// bit 5 SWIGLU: weight rows interleave gate and up (row 2i gate i, row 2i + 1 up i) and output column
// (out_offset + m) / 2 gets silu(gate) · up — the MLP's gate, up and SiLU in one pass.
// bit 6 ROPE: the attention projection with q and k rows in rotation pairs, rotated and written to y and the
// KV cache as lib/matmul_rope.wgsl says (each thread's 4 output columns are two whole pairs).
//
// Bindings (as matmul.wgsl): 0 params (uniform MatmulParams), 1 step, 2 x (f32 [N, K]; buffer size a multiple
// of 16 bytes), 3 w (one part of a matrix), 4 y (f32 [N, y_stride]), 5 row_scale (f32 [N]), 6 norm_w (f32 [K]),
// 7-10 ROPE's rows, cos_sin, k_cache, v_cache.
//
// WG = 256 threads own a 64 (n) × 64 (m) output tile, 4 × 4 per thread; K is staged 32 at a time in workgroup
// memory (x and decoded W, 16 KiB). Grid: x = ceil(M / 64) (wrapping into z beyond 65535), y = ceil(N / 64).
// For weights in storage buffers (real GPUs); texture weights (software GPUs) take gemm_tex.wgsl. Weight
// format: override W_DTYPE (lib/weight_decode.wgsl).

//! use lib/matmul_params.wgsl
//! use lib/matmul_flags.wgsl
//! use lib/matmul_bindings.wgsl
//! use lib/x_load.wgsl
//! use lib/weights_buffer.wgsl
//! use lib/weight_element.wgsl
//! use lib/matmul_epilogue.wgsl

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(6) var<storage, read> norm_w: array<f32>;

const BK: u32 = 32u;
// Tiles, transposed: [k][n or m], 4 consecutive n (or m) per vec4.
var<workgroup> xt: array<vec4<f32>, 512>; // BK × 64
var<workgroup> wt: array<vec4<f32>, 512>; // BK × 64
var<workgroup> row_ss: array<f32, 256>; // NORM, tiled: Σx² partials, 4 threads per tile row

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
  store4(n, m, acc0, a.x, true);
  store4(n + 1u, m, acc1, a.y, true);
  store4(n + 2u, m, acc2, a.z, true);
  store4(n + 3u, m, acc3, a.w, true);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) li: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  tiled(li, wid.x + wid.z * nwg.x, wid.y);
}
