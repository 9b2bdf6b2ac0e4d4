/**
 * Token sampling in plain TypeScript: the semantics written out in the header of kernels/sample.wgsl, step for
 * step (greedy, temperature, top-k, top-p, the stateless per-position random draw). The GPU sampler
 * (`sampler.ts`) is checked against it.
 */

import type { SamplingOptions } from "./sampler.ts";

const X_MIN = -24;
const W_SCALE = 2 ** 31;
const P_ONE = 2 ** 24;
const INV_T_MAX = Math.fround(1e30);

/** Options as the GPU sees them: NaN temperature → greedy, NaN top-p → off, top-k a u32. */
function sanitize(o: SamplingOptions): SamplingOptions {
  return {
    temperature: Number.isNaN(o.temperature) ? 0 : o.temperature,
    topK: Math.max(0, Math.min(0xffffffff, Math.floor(o.topK) || 0)),
    topP: Number.isNaN(o.topP) ? 1 : o.topP,
    seed: o.seed >>> 0,
  };
}

/** The PCG hash (Jarzynski & Olano), u32 → u32. */
export function pcg(v: number): number {
  const s = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul((s >>> ((s >>> 28) + 4)) ^ s, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

/** The 24 random bits the GPU draws for (seed, position). */
export function rng24(seed: number, position: number): number {
  return pcg((seed >>> 0) ^ pcg(position >>> 0)) >>> 8;
}

/** The uniform draw in [0, 1) for (seed, position): exactly the GPU's u = r / 2^24. */
export function rngUniform(seed: number, position: number): number {
  return rng24(seed, position) / P_ONE;
}

/** f32 bit pattern → u32 that sorts like the value (-0 counts as +0). */
function sortKey(bits: number): number {
  if (bits === 0x80000000) bits = 0;
  return bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
}

const keyF32 = new Float32Array(1);
const keyU32 = new Uint32Array(keyF32.buffer);

function keyToFloat(k: number): number {
  keyU32[0] = k & 0x80000000 ? k & 0x7fffffff : ~k >>> 0;
  return keyF32[0];
}

/** The GPU's 1/T (f32, capped so that (l - m) * inv_t stays finite). */
function invTemperature(t: number): number {
  return Math.min(Math.fround(1 / Math.fround(t)), INV_T_MAX);
}

/** Integer weight of a logit: u32(exp(x) * 2^31) for x = (l - m) * inv_t >= -24, else 0. */
function weightOf(l: number, m: number, invT: number): number {
  const x = Math.fround(Math.fround(l - m) * invT);
  return x >= X_MIN ? Math.floor(Math.fround(Math.exp(x)) * W_SCALE) : 0;
}

function topP24(p: number): number {
  const c = Math.min(Math.max(Math.fround(p), 0), 1);
  return Math.floor(c * P_ONE);
}

/** floor (or ceil) of r * m / 2^24, exact. */
function mulShift24(r: number, m: number, roundUp: boolean): number {
  const prod = BigInt(r) * BigInt(m);
  let q = prod >> 24n;
  if (roundUp && (prod & 0xffffffn) !== 0n) q += 1n;
  return Number(q);
}

/**
 * The sampling semantics in plain TypeScript (tests and diagnostics). Integer weights are summed in
 * f64, which is exact for these sizes (< 2^53), so this matches the GPU's 64-bit sums; only exp()
 * may differ by an ulp between the two.
 */
export function referenceSample(logits: Float32Array, options: SamplingOptions, position: number): number {
  const opts = sanitize(options);
  const vocab = logits.length;
  const bits = new Uint32Array(logits.buffer, logits.byteOffset, vocab);
  const keys = new Uint32Array(vocab);
  let best = 0;
  for (let i = 0; i < vocab; i++) {
    const k = sortKey(bits[i]);
    keys[i] = k;
    if (k > keys[best]) best = i;
  }
  const temperature = Math.fround(opts.temperature);
  if (!(temperature > 0)) return best;
  const m = keyToFloat(keys[best]);
  const invT = invTemperature(temperature);
  const w = new Float64Array(vocab);
  for (let i = 0; i < vocab; i++) w[i] = weightOf(logits[i], m, invT);

  // top-k: the topK-th largest key
  const k = opts.topK >>> 0;
  let tau = 0;
  if (k > 0 && k < vocab) {
    const sorted = keys.slice().sort();
    tau = sorted[vocab - k];
  }
  let mk = 0;
  for (let i = 0; i < vocab; i++) if (keys[i] >= tau) mk += w[i];

  // top-p: the largest key whose kept tokens at or above it reach the target mass
  const p24 = topP24(opts.topP);
  if (p24 < P_ONE) {
    const target = Math.max(1, mulShift24(p24, mk, true));
    const kept = keys.filter((key) => key >= tau).sort();
    let cum = 0;
    for (let i = kept.length - 1; i >= 0; i--) {
      cum += weightOf(keyToFloat(kept[i]), m, invT);
      if ((i === 0 || kept[i - 1] !== kept[i]) && cum >= target) {
        tau = kept[i];
        break;
      }
    }
  }

  let mass = 0;
  for (let i = 0; i < vocab; i++) if (keys[i] >= tau) mass += w[i];
  if (mass === 0) return best;
  const target = mulShift24(rng24(opts.seed, position), mass, false);
  let cum = 0;
  let last = best;
  for (let i = 0; i < vocab; i++) {
    if (keys[i] < tau) continue;
    cum += w[i];
    last = i;
    if (cum > target) return i;
  }
  return last;
}

/** log_softmax(logits)[target] (f64) and whether target is the argmax (ties to the lowest id). */
export function referenceLogprob(logits: Float32Array, target: number): { logprob: number; greedy: boolean } {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  const m = logits[best];
  let s = 0;
  for (let i = 0; i < logits.length; i++) s += Math.exp(logits[i] - m);
  return { logprob: logits[target] - m - Math.log(s), greedy: best === target };
}
