// Activations x (f32 [N, K], row-major) from a storage buffer, binding 2 (its size a multiple of 16 bytes),
// for the matmul kernels that take any row count; and the RMSNorm factor of what they read (NORM).
// gemv_tex.wgsl reads its one row through a uniform window or a texture instead.

//! use lib/matmul_flags.wgsl

@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;

// x element i (flat index).
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

// 1 / RMS of a row of K values whose squares sum to ss.
fn inv_rms(ss: f32) -> f32 {
  return inverseSqrt(ss / f32(params.K) + params.eps);
}
