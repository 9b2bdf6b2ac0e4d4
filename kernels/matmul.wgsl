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
// Bindings: 0 params (uniform MatmulParams), 1 step, 2 x (f32 [N, K] row-major; buffer size a multiple of
// 16 bytes), 3 w (one part of a matrix: rows of row_stride elements, 16-byte aligned), 4 y (f32 [N, y_stride]),
// 5 row_scale (f32 [N]; any buffer when the row scale is off), 6 norm_w (f32 [K], buffer size a multiple of
// 16 bytes; any buffer without NORM), 7 rows ({slot, pos} per activation row), 8 cos_sin ([ctx, head_dim / 2]),
// 9 k_cache, 10 v_cache (this layer's, [slots, ctx, kv_dim]); 7-10 are read under ROPE only.
//
// Grid: x = blocks of WG / TPR output rows (wrapping into z beyond 65535 blocks), y = ceil(N / 4): each
// invocation handles up to 4 activation rows, so every weight it loads serves all of them.
//
// Weight format: override W_DTYPE (lib/weight_decode.wgsl).
// Variants (override TPR, threads per output row):
//   TPR = 32+ (real GPUs) a group of TPR threads strides over one row with vec4<u32> loads (coalesced);
//             partial sums meet in workgroup memory (a tree of log2(TPR) barriers). TPR: a power of two.
//   TPR = 1   one row per invocation, no barrier: buffer weights on CPU software GPUs (src/engine/matmul.ts;
//             their default is texture weights, gemv_tex / gemm_tex), where it beats TPR = 32 at every
//             shape measured (kernels/README.md).

//! use lib/matmul_params.wgsl
//! use lib/matmul_flags.wgsl
//! use lib/matmul_bindings.wgsl
//! use lib/x_load.wgsl
//! use lib/weights_buffer.wgsl
//! use lib/weight_element.wgsl
//! use lib/matmul_epilogue.wgsl
//! use lib/matmul_rope.wgsl

override TPR: u32 = 1u; // threads per output row (power of two)
override WG: u32 = 64u; // invocations per workgroup (a multiple of TPR)

@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(6) var<storage, read> norm_w: array<vec4<f32>>;

// Output rows per workgroup.
override RPW: u32 = WG / TPR;

var<workgroup> partial: array<vec4<f32>, WG>;
var<workgroup> partial_ss: array<vec4<f32>, WG>; // NORM: Σx² per activation row

// Weights 4g .. 4g + 3 of a 16-byte chunk of quantized weights, unscaled.
fn qgroup(q: vec4<u32>, g: u32) -> vec4<f32> {
  if (W_DTYPE == 3u) {
    return q8x4(q[g]);
  }
  return q4x4(q[g >> 1u], (g & 1u) * 16u);
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

// Σ_k x · w (and Σ x² under NORM) of matrix row mm over this lane's whole chunks, for the nb activation rows
// at xr: (sums, squares), each a vec4 over the activation rows.
fn chunk_sums(lane: u32, mm: u32, xr: vec4<u32>, nb: u32) -> mat2x4<f32> {
  let v0 = mm * (words_per_row() / 4u);
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  var q0 = vec4<f32>(0.0); // Σx² partials (NORM)
  var q1 = vec4<f32>(0.0);
  var q2 = vec4<f32>(0.0);
  var q3 = vec4<f32>(0.0);
  for (var c = lane; c < params.K / EPV; c += TPR) {
    let q = w[v0 + c];
    let k = c * EPV;
    if (W_DTYPE == 0u) {
      let wa = bitcast<vec4<f32>>(q);
      a0 += wa * xn4(xr.x + k, k, &q0);
      if (nb > 1u) {
        a1 += wa * xn4(xr.y + k, k, &q1);
      }
      if (nb > 2u) {
        a2 += wa * xn4(xr.z + k, k, &q2);
      }
      if (nb > 3u) {
        a3 += wa * xn4(xr.w + k, k, &q3);
      }
    } else if (W_DTYPE >= 3u) {
      // Quantized: the chunk is half a block (q8) or one block (q4), all under one scale.
      let d = qscale(mm * words_per_row(), k >> 5u);
      var s0 = vec4<f32>(0.0);
      var s1 = vec4<f32>(0.0);
      var s2 = vec4<f32>(0.0);
      var s3 = vec4<f32>(0.0);
      for (var g = 0u; g < EPV / 4u; g++) {
        let wg = qgroup(q, g);
        let kg = k + 4u * g;
        s0 += wg * xn4(xr.x + kg, kg, &q0);
        if (nb > 1u) {
          s1 += wg * xn4(xr.y + kg, kg, &q1);
        }
        if (nb > 2u) {
          s2 += wg * xn4(xr.z + kg, kg, &q2);
        }
        if (nb > 3u) {
          s3 += wg * xn4(xr.w + kg, kg, &q3);
        }
      }
      a0 += d * s0;
      a1 += d * s1;
      a2 += d * s2;
      a3 += d * s3;
    } else {
      let wa = lo4(q);
      let wb = hi4(q);
      a0 += wa * xn4(xr.x + k, k, &q0) + wb * xn4(xr.x + k + 4u, k + 4u, &q0);
      if (nb > 1u) {
        a1 += wa * xn4(xr.y + k, k, &q1) + wb * xn4(xr.y + k + 4u, k + 4u, &q1);
      }
      if (nb > 2u) {
        a2 += wa * xn4(xr.z + k, k, &q2) + wb * xn4(xr.z + k + 4u, k + 4u, &q2);
      }
      if (nb > 3u) {
        a3 += wa * xn4(xr.w + k, k, &q3) + wb * xn4(xr.w + k + 4u, k + 4u, &q3);
      }
    }
  }
  return mat2x4<f32>(
    vec4<f32>(hsum(a0), hsum(a1), hsum(a2), hsum(a3)),
    vec4<f32>(hsum(q0), hsum(q1), hsum(q2), hsum(q3)),
  );
}

// The K tail (K not a multiple of EPV), element by element, added to sums and squares.
fn tail_sums(lane: u32, mm: u32, xr: vec4<u32>, nb: u32, sums: mat2x4<f32>) -> mat2x4<f32> {
  var s = sums[0];
  var ss = sums[1];
  for (var k = (params.K / EPV) * EPV + lane; k < params.K; k += TPR) {
    let wv = welem(mm * words_per_row(), k);
    var xv = vec4<f32>(xs(xr.x + k), 0.0, 0.0, 0.0);
    if (nb > 1u) {
      xv.y = xs(xr.y + k);
    }
    if (nb > 2u) {
      xv.z = xs(xr.z + k);
    }
    if (nb > 3u) {
      xv.w = xs(xr.w + k);
    }
    if (has_norm()) {
      ss += xv * xv;
      xv *= norm1(k);
    }
    s += wv * xv;
  }
  return mat2x4<f32>(s, ss);
}

// TPR > 1: the row's TPR lanes' sums and squares added up in workgroup memory (a tree of log2(TPR)
// barriers); every lane gets the total.
fn reduce_lanes(li: u32, lane: u32, sums: mat2x4<f32>) -> mat2x4<f32> {
  partial[li] = sums[0];
  partial_ss[li] = sums[1];
  workgroupBarrier();
  for (var off = TPR / 2u; off > 0u; off >>= 1u) {
    if (lane < off) {
      partial[li] += partial[li + off];
      partial_ss[li] += partial_ss[li + off];
    }
    workgroupBarrier();
  }
  return mat2x4<f32>(partial[li], partial_ss[li]);
}

// SWIGLU / ROPE: rows 2i and 2i + 1 meet — (gate, up) under SWIGLU, a rotation pair under ROPE: the even
// row's lane 0 reads the odd row's sums (RPW is even). Each invocation overwrites only its own slot, after
// the reduction's last barrier.
fn store_pairs(li: u32, lane: u32, m: u32, n0: u32, nb: u32, s: vec4<f32>) {
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
  let xr = vec4<u32>(n0 * K) + vec4<u32>(0u, K, 2u * K, 3u * K);
  var sums = tail_sums(lane, mm, xr, nb, chunk_sums(lane, mm, xr, nb));
  if (TPR > 1u) {
    sums = reduce_lanes(li, lane, sums);
  }
  var s = sums[0];
  if (has_norm()) {
    s *= inverseSqrt(sums[1] / f32(K) + params.eps);
  }
  if (swiglu() || rope()) {
    store_pairs(li, lane, m, n0, nb, s);
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

// ROPE (lib/matmul_rope.wgsl): rows gm and gm + 1 of the whole matrix — a rotation pair of q or k, rotated at
// activation row n's position, or two values of v or of the rows after it.
fn rope_pair(n: u32, gm: u32, v_in: vec2<f32>) {
  let row = rows[n];
  var v = v_in;
  if (gm < params.q_rows + params.kv_dim) {
    v = rotate(v, cos_sin[rope_angle(row.pos, gm)]);
  }
  let cache = cache_base(row);
  // An early return past the part, not gemv_tex's guard: the coop GEMV ran 6% slower on lavapipe with the
  // guard, whatever the flags (both sides of a branch run there).
  if (gm - params.out_offset >= params.rows) {
    return;
  }
  qkv_store(n, gm, cache, v, gm + 1u - params.out_offset < params.rows);
}
