/** Training embedding in plain TypeScript (f64): the gather and the scatter-add of its gradient. */

/** x [rows, hidden] = table[tokens[r]]. */
export function referenceEmbedding(
  table: ArrayLike<number>,
  tokens: ArrayLike<number>,
  hidden: number,
): Float64Array {
  const x = new Float64Array(tokens.length * hidden);
  for (let r = 0; r < tokens.length; r++) {
    for (let k = 0; k < hidden; k++) x[r * hidden + k] = table[tokens[r] * hidden + k];
  }
  return x;
}

/** dTable [vocab, hidden] with dTable[tokens[r]] += dx[r]. */
export function referenceEmbeddingBackward(
  dx: ArrayLike<number>,
  tokens: ArrayLike<number>,
  vocab: number,
  hidden: number,
): Float64Array {
  const d = new Float64Array(vocab * hidden);
  for (let r = 0; r < tokens.length; r++) {
    for (let k = 0; k < hidden; k++) d[tokens[r] * hidden + k] += dx[r * hidden + k];
  }
  return d;
}
