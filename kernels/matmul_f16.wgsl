// GEMV for a few activation rows, F16 weights read natively (needs `shader-f16`): the same contract,
// bindings, grid and TPR variants as matmul.wgsl, with W_DTYPE fixed to F16. Weights are converted to f32
// before the multiply; accumulation is f32.
//
// Bindings: 0 params (uniform), 1 step (uniform), 2 x (f32 [N, K]; buffer size a multiple of 16 bytes),
// 3 w (one part of an F16 matrix, rows of row_stride elements), 4 y (f32 [N, y_stride]), 5 row_scale (f32 [N]),
// 6 norm_w (f32 [K]), 7-10 ROPE's rows, cos_sin, k_cache, v_cache. Fusions NORM, SWIGLU and ROPE as
// matmul.wgsl.
//
// Chosen for F16 weights on real GPUs with shader-f16. On llvmpipe it is slower than the u32-word kernels
// (each 16-bit load costs as much as a 32-bit one there), so software GPUs keep their weights in textures.
// Subgroup builtins are not used: the only reduction is once per output row, after the whole K loop, where
// they would save a handful of barriers, and leaving them out keeps the kernel usable with f16 alone.

enable f16;

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

struct Row {
  slot: u32,
  pos: u32,
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
@group(0) @binding(3) var<storage, read> w: array<vec4<f16>>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> row_scale: array<f32>;
@group(0) @binding(6) var<storage, read> norm_w: array<f32>;
@group(0) @binding(7) var<storage, read> rows: array<Row>;
@group(0) @binding(8) var<storage, read> cos_sin: array<vec2<f32>>;
@group(0) @binding(9) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(10) var<storage, read_write> v_cache: array<f32>;

override RPW: u32 = WG / TPR;

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

fn x4(i: u32) -> vec4<f32> {
  if (x_aligned()) {
    return x[i >> 2u];
  }
  return vec4<f32>(xs(i), xs(i + 1u), xs(i + 2u), xs(i + 3u));
}

fn hsum(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

// x[i .. i + 4] (columns k .. k + 4) through the RMSNorm weights under NORM, adding the raw squares to *ss.
fn xn4(i: u32, k: u32, ss: ptr<function, vec4<f32>>) -> vec4<f32> {
  let v = x4(i);
  if (!has_norm()) {
    return v;
  }
  *ss += v * v;
  return v * vec4<f32>(norm_w[k], norm_w[k + 1u], norm_w[k + 2u], norm_w[k + 3u]);
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
  let mm = min(m, params.rows - 1u);
  let e0 = mm * params.row_stride; // first element of the row
  let v0 = e0 / 4u;
  let nchunks = K / 8u;
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
    let wa = vec4<f32>(w[v0 + 2u * c]);
    let wb = vec4<f32>(w[v0 + 2u * c + 1u]);
    let k = c * 8u;
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
  var s = vec4<f32>(hsum(a0), hsum(a1), hsum(a2), hsum(a3));
  var ss = vec4<f32>(hsum(q0), hsum(q1), hsum(q2), hsum(q3));
  for (var k = nchunks * 8u + lane; k < K; k += TPR) {
    let i = e0 + k;
    let wv = f32(w[i >> 2u][i & 3u]);
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
      xv *= norm_w[k];
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
