/**
 * The training forward of a whole model in plain TypeScript (f64), for the whole-model gradient tests: the
 * same equations as src/train/model (plain, FlexiDepth-routed and DMTD layers), the loss
 * L = CE + α·L_skip, nothing shared with the GPU code but the attention and RoPE references.
 */

import { referenceTrainAttention } from "../src/ops/attention/reference.ts";
import { referenceRopeRows } from "../src/ops/rope/reference.ts";
import { routerTensorNames } from "../src/model/checkpoint.ts";
import type { TrainShape } from "../src/train/model/shape.ts";

export type Values = Map<string, Float64Array>;

export interface RefBatch {
  batch: number;
  seq: number;
  inputs: Uint32Array;
  targets: Uint32Array;
  cosSin: Float32Array;
  alpha: number;
}

export interface RefResult {
  loss: number;
  lm: number;
  skip: number;
  /** Per routed layer, its gates [N]. */
  gates: Float64Array[];
}

function linear(x: Float64Array, w: Float64Array, N: number, K: number, M: number): Float64Array {
  const y = new Float64Array(N * M);
  for (let n = 0; n < N; n++) {
    for (let m = 0; m < M; m++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[n * K + k] * w[m * K + k];
      y[n * M + m] = s;
    }
  }
  return y;
}

function rmsNorm(x: Float64Array, w: Float64Array, rows: number, width: number, eps: number): Float64Array {
  const y = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < width; c++) ss += x[r * width + c] ** 2;
    const inv = 1 / Math.sqrt(ss / width + eps);
    for (let c = 0; c < width; c++) y[r * width + c] = x[r * width + c] * inv * w[c];
  }
  return y;
}

const silu = (v: number) => v / (1 + Math.exp(-v));
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

function ffn(
  n: Float64Array,
  gate: Float64Array,
  up: Float64Array,
  out: Float64Array,
  N: number,
  H: number,
  I: number,
) {
  const g = linear(n, gate, N, H, I), u = linear(n, up, N, H, I);
  for (let i = 0; i < g.length; i++) g[i] = silu(g[i]) * u[i];
  return linear(g, out, N, I, H);
}

function attention(v: Values, s: TrainShape, b: RefBatch, l: number, n1: Float64Array): Float64Array {
  const N = b.batch * b.seq, H = s.hidden, hd = s.headDim, p = `model.layers.${l}.self_attn`;
  const q = linear(n1, v.get(`${p}.q_proj.weight`)!, N, H, s.heads * hd);
  const k = linear(n1, v.get(`${p}.k_proj.weight`)!, N, H, s.kvHeads * hd);
  const val = linear(n1, v.get(`${p}.v_proj.weight`)!, N, H, s.kvHeads * hd);
  const eps = s.cfg.rmsNormEps;
  const qn = s.qkNorm ? rmsNorm(q, v.get(`${p}.q_norm.weight`)!, N * s.heads, hd, eps) : q;
  const kn = s.qkNorm ? rmsNorm(k, v.get(`${p}.k_norm.weight`)!, N * s.kvHeads, hd, eps) : k;
  const rows = (heads: number) => ({
    rows: N,
    seqLen: b.seq,
    headDim: hd,
    heads,
    stride: heads * hd,
    offset: 0,
  });
  referenceRopeRows(qn, b.cosSin, rows(s.heads));
  referenceRopeRows(kn, b.cosSin, rows(s.kvHeads));
  const dims = { numHeads: s.heads, numKvHeads: s.kvHeads, headDim: hd, batch: b.batch, seqLen: b.seq };
  const o = referenceTrainAttention(qn, kn, val, dims).out;
  return linear(o, v.get(`${p}.o_proj.weight`)!, N, s.heads * hd, H);
}

function router(v: Values, s: TrainShape, l: number, z: Float64Array, N: number): Float64Array {
  const n = routerTensorNames(l), H = s.hidden, B = s.bottleneck;
  const e = rmsNorm(linear(z, v.get(n.enc)!, N, H, B), v.get(n.norm)!, N, B, s.cfg.rmsNormEps);
  for (let i = 0; i < e.length; i++) e[i] = Math.tanh(e[i]);
  const logit = linear(linear(e, v.get(n.dec)!, N, B, H), v.get(n.head)!, N, H, 1);
  return logit.map(sigmoid);
}

/** One layer: x → out; a routed layer's gates pushed onto `gates`. */
function layer(v: Values, s: TrainShape, b: RefBatch, l: number, x: Float64Array, gates: Float64Array[]) {
  const N = b.batch * b.seq, H = s.hidden, eps = s.cfg.rmsNormEps, p = `model.layers.${l}`;
  const n1 = rmsNorm(x, v.get(`${p}.input_layernorm.weight`)!, N, H, eps);
  const a = attention(v, s, b, l, n1);
  const routed = s.routed.includes(l);
  const g = routed ? router(v, s, l, n1, N) : new Float64Array(N).fill(1);
  const m = g.map((gi) => (routed ? (gi > 0.5 ? 1 : 0) : 1));
  if (routed) gates.push(g);
  const h = x.map((xi, i) => xi + m[Math.floor(i / H)] * a[i]);
  const n2 = rmsNorm(h, v.get(`${p}.post_attention_layernorm.weight`)!, N, H, eps);
  const mlp = ffn(
    n2,
    v.get(`${p}.mlp.gate_proj.weight`)!,
    v.get(`${p}.mlp.up_proj.weight`)!,
    v.get(`${p}.mlp.down_proj.weight`)!,
    N,
    H,
    s.intermediate,
  );
  if (!routed) return h.map((hi, i) => hi + mlp[i]);
  const r = routerTensorNames(l);
  const ad = ffn(n2, v.get(r.gate)!, v.get(r.down)!, v.get(r.up)!, N, H, s.adapter);
  return h.map((hi, i) => {
    const t = Math.floor(i / H);
    return hi + m[t] * g[t] * mlp[i] + (1 - m[t]) * (1 - g[t]) * ad[i];
  });
}

export function referenceTrainLoss(v: Values, s: TrainShape, b: RefBatch): RefResult {
  const N = b.batch * b.seq, H = s.hidden, V = s.vocab, table = v.get("model.embed_tokens.weight")!;
  const e = new Float64Array(N * H);
  for (let r = 0; r < N; r++) e.set(table.subarray(b.inputs[r] * H, (b.inputs[r] + 1) * H), r * H);
  let x = e;
  const gates: Float64Array[] = [];
  for (let l = 0; l < s.layers; l++) {
    if (s.dmtd && l === s.dmtd.thinking) {
      const t = x, cycle = s.dmtd.cycle;
      x = e.map((ei, i) => ei + (((Math.floor(i / H) % b.seq) % cycle === 0) ? t[i] : 0));
    }
    x = layer(v, s, b, l, x, gates);
  }
  const nf = rmsNorm(x, v.get("model.norm.weight")!, N, H, s.cfg.rmsNormEps);
  const logits = linear(nf, s.tiedEmbeddings ? table : v.get("lm_head.weight")!, N, H, V);
  let lm = 0;
  for (let r = 0; r < N; r++) {
    let max = -Infinity, sum = 0;
    for (let c = 0; c < V; c++) max = Math.max(max, logits[r * V + c]);
    for (let c = 0; c < V; c++) sum += Math.exp(logits[r * V + c] - max);
    lm += max + Math.log(sum) - logits[r * V + b.targets[r]];
  }
  lm /= N;
  let skip = 0;
  if (gates.length) {
    for (let t = 0; t < N; t++) skip += gates.reduce((acc, g) => acc + g[t], 0) ** 2;
    skip /= N;
  }
  return { loss: lm + b.alpha * skip, lm, skip, gates };
}
