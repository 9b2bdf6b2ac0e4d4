// How the matmul kernels store their sums: y (+)= alpha · s(n) · sum, with s(n) the row scale; under SWIGLU
// silu(gate) · up of (gate, up) row pairs; under ROPE through lib/matmul_rope.wgsl.

//! use lib/matmul_flags.wgsl
//! use lib/matmul_bindings.wgsl
//! use lib/matmul_rope.wgsl

fn silu(g: f32) -> f32 {
  return g / (1.0 + exp(-g));
}

// y[i] = v, or y[i] += v when accumulating.
fn put(i: u32, v: f32) {
  if (accumulate()) {
    y[i] += v;
  } else {
    y[i] = v;
  }
}

// alpha · s(n): the constant factor times the row scale of activation row n.
fn row_factor(n: u32) -> f32 {
  var v = params.alpha;
  if (scale_mode() == 1u) {
    v *= row_scale[n];
  } else if (scale_mode() == 2u) {
    v *= 1.0 - row_scale[n];
  }
  return v;
}

// Stores a · acc (component j: part row m0 + j, m0 a multiple of 4; a = 1 / RMS under NORM) for activation row
// n, when live (the texture kernels' groups past the part repeat the last one and store nothing).
fn store4(n: u32, m0: u32, acc_in: vec4<f32>, a: f32, live: bool) {
  if (n >= step.n_rows || !live) {
    return;
  }
  let s = row_factor(n);
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
