// The parameters of every matmul kernel (matmul, gemm, gemm_tex, gemv_tex, gemv_tex_rows): the 80 bytes
// src/ops/matmul/bindings.ts writes once per matrix part (and row group). The texture GEMVs read them through a
// storage binding (lib/gemv_tex_io.wgsl says why), the others as a uniform named `params`.

struct MatmulParams {
  K: u32,
  rows: u32, // rows of this part
  row_stride: u32, // elements between row starts (bytes when quantized)
  y_stride: u32,
  out_offset: u32, // output column of the part's row 0
  alpha: f32,
  flags: u32, // lib/matmul_flags.wgsl
  eps: f32, // RMSNorm epsilon (NORM)
  tex_shift: u32, // texture weights: log2 of texels per texture row
  head_dim: u32, // ROPE
  q_rows: u32, // ROPE: matrix rows before k
  kv_dim: u32, // ROPE
  ctx: u32, // ROPE: positions per cache slot
  groups: u32, // texture weights: 4-row groups per invocation (several for short rows)
  best_base: u32, // gemv_tex ARGMAX: this part's first pair in `best`
  // gemv_tex_rows (0 elsewhere): the dispatch's first activation row (a step split into row groups) and where
  // its x starts in the uniform window (the host binds the window at a 256-byte boundary at or before it)
  row0: u32,
  x_base: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
}
