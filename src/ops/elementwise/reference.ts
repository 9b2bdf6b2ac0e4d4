/** The training forward's elementwise ops in plain TypeScript (f64), forward and backward, for the tests. */

type Values = ArrayLike<number>;

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** act = silu(gate) · up. */
export function referenceSwigluTrain(gate: Values, up: Values): Float64Array {
  return Float64Array.from(gate, (g, i) => g * sigmoid(g) * up[i]);
}

/** dgate and dup from dact. */
export function referenceSwigluBackward(
  gate: Values,
  up: Values,
  dact: Values,
): { dgate: Float64Array; dup: Float64Array } {
  const dgate = new Float64Array(gate.length), dup = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i], s = sigmoid(g);
    dgate[i] = dact[i] * up[i] * s * (1 + g * (1 - s));
    dup[i] = dact[i] * g * s;
  }
  return { dgate, dup };
}

/** y = f(s[r]) · x per row of [rows, width], f(s) = s or 1 − s (`complement`). */
export function referenceRowScale(s: Values, x: Values, width: number, complement = false): Float64Array {
  return Float64Array.from(x, (v, i) => {
    const f = s[Math.floor(i / width)];
    return (complement ? 1 - f : f) * v;
  });
}

/** Its gradients: dx = f(s) · dy and ds[r] = ± Σ_c dy · x. */
export function referenceRowScaleBackward(
  s: Values,
  x: Values,
  dy: Values,
  width: number,
  complement = false,
): { dx: Float64Array; ds: Float64Array } {
  const ds = new Float64Array(s.length);
  for (let i = 0; i < x.length; i++) ds[Math.floor(i / width)] += (complement ? -1 : 1) * dy[i] * x[i];
  return { dx: referenceRowScale(s, dy, width, complement), ds };
}

/** tanh or sigmoid elementwise. */
export function referenceUnary(fn: "tanh" | "sigmoid", x: Values): Float64Array {
  return Float64Array.from(x, (v) => fn === "tanh" ? Math.tanh(v) : sigmoid(v));
}

/** Its gradient from the output y: dy · (1 − y²) or dy · y · (1 − y). */
export function referenceUnaryBackward(fn: "tanh" | "sigmoid", y: Values, dy: Values): Float64Array {
  return Float64Array.from(y, (v, i) => dy[i] * (fn === "tanh" ? 1 - v * v : v * (1 - v)));
}
