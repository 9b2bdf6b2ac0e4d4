/**
 * How weight rows are laid out on the GPU (pure functions of tensor names and raw checkpoint bytes):
 * - projections that read the same input are stacked by rows into one matrix ([q; k; v], [k; v; W_enc]),
 *   so one matmul computes them;
 * - gate and up (the MLP's, and the adapter's gate and down) are interleaved row by row, so the matmul that
 *   computes them can apply SiLU(gate) · up (`swiglu`);
 * - each head's q and k rows are reordered into rotation pairs, so the projection's epilogue can apply RoPE.
 */

/**
 * Reorders the rows of a q or k projection ([heads × headDim, cols], raw bytes) so that each head's rotation
 * pairs are adjacent: new row 2i = old row i, new row 2i + 1 = old row i + headDim / 2 — the layout the ROPE
 * epilogue rotates in place. Attention scores are unchanged when q and k share the order.
 */
export function ropePairRows(raw: Uint8Array, rows: number, headDim: number): Uint8Array<ArrayBuffer> {
  const rowBytes = raw.byteLength / rows, half = headDim / 2;
  const out = new Uint8Array(raw.byteLength);
  for (let h = 0; h < rows / headDim; h++) {
    for (let i = 0; i < half; i++) {
      const src = h * headDim + i, dst = h * headDim + 2 * i;
      out.set(raw.subarray(src * rowBytes, (src + 1) * rowBytes), dst * rowBytes);
      out.set(raw.subarray((src + half) * rowBytes, (src + half + 1) * rowBytes), (dst + 1) * rowBytes);
    }
  }
  return out;
}

/** Rows r0 .. r0 + n of `a` and `b` (`rowBytes` each) interleaved: a[r0], b[r0], a[r0 + 1], b[r0 + 1], … */
export function interleaveRows(
  a: Uint8Array,
  b: Uint8Array,
  rowBytes: number,
  r0: number,
  n: number,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(2 * n * rowBytes);
  for (let r = 0; r < n; r++) {
    const src = (r0 + r) * rowBytes;
    out.set(a.subarray(src, src + rowBytes), 2 * r * rowBytes);
    out.set(b.subarray(src, src + rowBytes), (2 * r + 1) * rowBytes);
  }
  return out;
}

/**
 * The tensors stacked into layer `layer`'s attention projection, in row order: [q; k; v] on a plain layer; on a
 * routed layer q runs only for kept rows, so it stays apart, and [k; v] takes the router's W_enc (`enc`) below
 * it when it may (same format: all three read input_layernorm(x)).
 */
export function attentionStack(layer: number, routed: boolean, enc?: string): string[] {
  const a = `model.layers.${layer}.self_attn.`;
  return [
    ...(routed ? [] : [a + "q_proj.weight"]),
    a + "k_proj.weight",
    a + "v_proj.weight",
    ...(enc ? [enc] : []),
  ];
}
