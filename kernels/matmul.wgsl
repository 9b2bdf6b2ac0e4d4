// GEMV for a few activation rows (decode):
//   y[n, out_offset + m] (+)= alpha · s(n) · Σ_k x[n, k] · W[m, k]    for n < step.n_rows, m < params.rows
// where s(n) = 1, row_scale[n] or 1 − row_scale[n] (flags bits 1-2: 0, 1, 2).
//
// Bindings: 0 params (uniform), 1 step (uniform), 2 x (f32 [N, K] row-major; buffer size a multiple of
// 16 bytes), 3 w (one part of a matrix: rows of row_stride elements, 16-byte aligned), 4 y (f32 [N, y_stride]),
// 5 row_scale (f32 [N]; any buffer when the row scale is off).
//
// Grid: x = blocks of WG / TPR output rows (wrapping into z beyond 65535 blocks), y = ceil(N / 4): each
// invocation handles up to 4 activation rows, so every weight it loads serves all of them.
//
// Variants (override TPR, threads per output row):
//   TPR = 32+ (real GPUs) a group of TPR threads strides over one row with vec4<u32> loads (coalesced);
//             partial sums meet in workgroup memory (a tree of log2(TPR) barriers). TPR: a power of two.
//   TPR = 1   one row per invocation, no barrier. Not chosen automatically: on CPU software GPUs the direct
//             kernel of gemm.wgsl / gemm_sg.wgsl is faster (it reuses every load for several rows).

override W_DTYPE: u32 = 0u; // 0 f32, 1 f16, 2 bf16
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
  // bit 3: K % 4 == 0 (x rows start on 16-byte boundaries). Runtime flags, not overrides: on llvmpipe every
  // distinct pipeline of a module competes for a small cache of compiled variants.
  flags: u32,
  pad1: u32,
}

struct Step {
  n_rows: u32,
  n_out: u32,
  pad0: u32,
  pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> row_scale: array<f32>;

// Output rows per workgroup.
override RPW: u32 = WG / TPR;
// Weight elements per vec4<u32>.
override EPV: u32 = select(8u, 4u, W_DTYPE == 0u);

var<workgroup> partial: array<vec4<f32>, WG>;

fn accumulate() -> bool {
  return (params.flags & 1u) != 0u;
}

fn scale_mode() -> u32 {
  return (params.flags >> 1u) & 3u;
}

fn x_aligned() -> bool {
  return (params.flags & 8u) != 0u;
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

// Weight element k of the row whose first u32 word is `word0` (K tails only).
fn welem(word0: u32, k: u32) -> f32 {
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
  let words_per_row = select(params.row_stride / 2u, params.row_stride, W_DTYPE == 0u);
  let v0 = mm * (words_per_row / 4u);
  let nchunks = K / EPV;
  let x0 = n0 * K;
  let x1 = x0 + K;
  let x2 = x1 + K;
  let x3 = x2 + K;

  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var c = lane; c < nchunks; c += TPR) {
    let q = w[v0 + c];
    let k = c * EPV;
    if (W_DTYPE == 0u) {
      let wa = bitcast<vec4<f32>>(q);
      a0 += wa * x4(x0 + k);
      if (nb > 1u) {
        a1 += wa * x4(x1 + k);
      }
      if (nb > 2u) {
        a2 += wa * x4(x2 + k);
      }
      if (nb > 3u) {
        a3 += wa * x4(x3 + k);
      }
    } else {
      let wa = lo4(q);
      let wb = hi4(q);
      a0 += wa * x4(x0 + k) + wb * x4(x0 + k + 4u);
      if (nb > 1u) {
        a1 += wa * x4(x1 + k) + wb * x4(x1 + k + 4u);
      }
      if (nb > 2u) {
        a2 += wa * x4(x2 + k) + wb * x4(x2 + k + 4u);
      }
      if (nb > 3u) {
        a3 += wa * x4(x3 + k) + wb * x4(x3 + k + 4u);
      }
    }
  }
  var s = vec4<f32>(hsum(a0), hsum(a1), hsum(a2), hsum(a3));
  // K tail (K not a multiple of EPV): element by element.
  for (var k = nchunks * EPV + lane; k < K; k += TPR) {
    let wv = welem(mm * words_per_row, k);
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
    s += wv * xv;
  }

  if (TPR > 1u) {
    partial[li] = s;
    workgroupBarrier();
    for (var off = TPR / 2u; off > 0u; off >>= 1u) {
      if (lane < off) {
        partial[li] += partial[li + off];
      }
      workgroupBarrier();
    }
    s = partial[li];
  }

  if (lane != 0u || m >= params.rows) {
    return;
  }
  for (var j = 0u; j < nb; j++) {
    let n = n0 + j;
    var v = s[j] * params.alpha;
    if (scale_mode() == 1u) {
      v *= row_scale[n];
    } else if (scale_mode() == 2u) {
      v *= 1.0 - row_scale[n];
    }
    let o = n * params.y_stride + params.out_offset + m;
    if (accumulate()) {
      y[o] += v;
    } else {
      y[o] = v;
    }
  }
}
