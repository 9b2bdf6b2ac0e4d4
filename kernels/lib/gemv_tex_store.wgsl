// How the texture GEMVs (gemv_tex.wgsl, gemv_tex_rows.wgsl) store a 4-row group's sums for activation row n
// (output row n at n · y_stride): plain, SWIGLU or ROPE as the flags say, accumulating or not, in the
// branch-free forms that llvmpipe runs fastest (it runs both sides of every branch: kernels/README.md).

//! use lib/matmul_flags.wgsl
//! use lib/matmul_bindings.wgsl
//! use lib/matmul_epilogue.wgsl
//! use lib/matmul_rope.wgsl

// alpha · s(n), the row scale without a branch.
fn scale_no_branch(n: u32) -> f32 {
  let mode = scale_mode();
  let rs = row_scale[n];
  return params.alpha * select(select(1.0, rs, mode == 1u), 1.0 - rs, mode == 2u);
}

// y[i] = v, or y[i] += v when accumulating, without a branch (the old value is read either way): unlike
// lib/matmul_epilogue.wgsl's put, for llvmpipe runs both sides of a branch.
fn put_no_branch(i: u32, v: f32) {
  y[i] = select(0.0, y[i], accumulate()) + v;
}

// Part rows m0 .. m0 + 3 of activation row n's result, times s (alpha and the row scale), into y (or, under
// ROPE, y and the KV cache).
fn epilogue(n: u32, m0: u32, sums: vec4<f32>, s: f32) {
  if (swiglu()) {
    // Rows (m0, m0 + 1) and (m0 + 2, m0 + 3) are (gate, up) pairs; m0 and out_offset are even.
    let o = n * params.y_stride + (params.out_offset + m0) / 2u;
    if (m0 + 1u < params.rows) {
      put_no_branch(o, silu(sums.x) * sums.y * s);
    }
    if (m0 + 3u < params.rows) {
      put_no_branch(o + 1u, silu(sums.z) * sums.w * s);
    }
    return;
  }
  let v = sums * s;
  if (rope()) {
    rope_rows(n, params.out_offset + m0, v);
  } else {
    let o = n * params.y_stride + params.out_offset + m0;
    if (m0 < params.rows) {
      put_no_branch(o, v.x);
    }
    if (m0 + 1u < params.rows) {
      put_no_branch(o + 1u, v.y);
    }
    if (m0 + 2u < params.rows) {
      put_no_branch(o + 2u, v.z);
    }
    if (m0 + 3u < params.rows) {
      put_no_branch(o + 3u, v.w);
    }
  }
}

// ROPE (lib/matmul_rope.wgsl): matrix rows gm .. gm + 3 of activation row n. A guard per row and a select,
// as gemv_tex always had, rather than rope_store's early return and four-way branch.
fn rope_rows(n: u32, gm: u32, v_in: vec4<f32>) {
  let row = rows[n];
  let v = rope_rotate4(row, gm, v_in);
  let cache = cache_base(row);
  for (var j = 0u; j < 4u; j += 2u) {
    let m = gm + j;
    if (m - params.out_offset < params.rows) {
      qkv_store(n, m, cache, select(v.xy, v.zw, j == 2u), m + 1u - params.out_offset < params.rows);
    }
  }
}
