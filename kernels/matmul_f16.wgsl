// GEMV for a few activation rows, F16 weights read natively (needs `shader-f16`): the same contract,
// bindings, grid and TPR variants as matmul.wgsl, with W_DTYPE fixed to F16. Weights are converted to f32
// before the multiply; accumulation is f32.
//
// Bindings: 0 params (uniform), 1 step (uniform), 2 x (f32 [N, K]; buffer size a multiple of 16 bytes),
// 3 w (one part of an F16 matrix, rows of row_stride elements), 4 y (f32 [N, y_stride]), 5 row_scale (f32 [N]).
//
// Chosen for F16 weights on real GPUs with shader-f16. On llvmpipe it is slower than the u32-word kernels
// (each 16-bit load costs as much as a 32-bit one there), so software GPUs take gemm_sg.wgsl instead.
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
@group(0) @binding(3) var<storage, read> w: array<vec4<f16>>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> row_scale: array<f32>;

override RPW: u32 = WG / TPR;

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

fn x4(i: u32) -> vec4<f32> {
  if (x_aligned()) {
    return x[i >> 2u];
  }
  return vec4<f32>(xs(i), xs(i + 1u), xs(i + 2u), xs(i + 3u));
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
  for (var c = lane; c < nchunks; c += TPR) {
    let wa = vec4<f32>(w[v0 + 2u * c]);
    let wb = vec4<f32>(w[v0 + 2u * c + 1u]);
    let k = c * 8u;
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
  var s = vec4<f32>(hsum(a0), hsum(a1), hsum(a2), hsum(a3));
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
