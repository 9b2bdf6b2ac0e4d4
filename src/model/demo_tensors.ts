/**
 * The demo model's tensors: their names, shapes and scales (a plan, from the options alone), and their
 * seeded random values. The demo checkpoint (./demo.ts) and the synthetic one (./synthetic.ts) share them.
 */

import { encodeFromF32 } from "./dtype.ts";
import { randomNormal } from "../util/random.ts";
import { REDUCTION_FACTOR, type ResolvedDemoOptions } from "./demo_config.ts";

/** One tensor to generate: values are mean + std·normal, seeded by name so tensors are independent. */
export interface TensorPlan {
  name: string;
  shape: number[];
  std: number;
  mean: number;
}

/** 32-bit FNV-1a, to derive a per-tensor seed from the base seed and the tensor's name. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

const bottleneck = (size: number) => Math.max(1, Math.floor(size / REDUCTION_FACTOR));

/** Every tensor of the checkpoint, in file order, with the scale its values are drawn at. */
export function planTensors(o: ResolvedDemoOptions): TensorPlan[] {
  const { hidden, intermediate: inter, vocabSize: vocab } = o;
  const qRows = o.heads * o.headDim;
  const kvRows = o.kvHeads * o.headDim;
  // Residual branches are damped so the stream's scale grows slowly with depth.
  const branch = 1 / Math.sqrt(2 * o.layers);
  const matrix = (name: string, rows: number, cols: number, gain = 1): TensorPlan => ({
    name,
    shape: [rows, cols],
    std: gain / Math.sqrt(cols),
    mean: 0,
  });
  const norm = (name: string, size: number): TensorPlan => ({ name, shape: [size], std: 0.05, mean: 1 });

  // Embeddings of unit scale: RMSNorm sees O(1) inputs and different tokens stay distinguishable.
  const plan: TensorPlan[] = [{ name: "model.embed_tokens.weight", shape: [vocab, hidden], std: 1, mean: 0 }];
  for (let i = 0; i < o.layers; i++) {
    const p = `model.layers.${i}`;
    plan.push(
      norm(`${p}.input_layernorm.weight`, hidden),
      // Larger q/k gain sharpens attention so the context (not just the last token) steers the output.
      matrix(`${p}.self_attn.q_proj.weight`, qRows, hidden, 2),
      matrix(`${p}.self_attn.k_proj.weight`, kvRows, hidden, 2),
      matrix(`${p}.self_attn.v_proj.weight`, kvRows, hidden),
      matrix(`${p}.self_attn.o_proj.weight`, hidden, qRows, branch * 2),
      norm(`${p}.post_attention_layernorm.weight`, hidden),
      matrix(`${p}.mlp.gate_proj.weight`, inter, hidden),
      matrix(`${p}.mlp.up_proj.weight`, inter, hidden),
      matrix(`${p}.mlp.down_proj.weight`, hidden, inter, branch * 2),
      ...headTensors(o, p, qRows, kvRows),
    );
    if (o.routingLayers.includes(i)) {
      const r = bottleneck(hidden);
      const a = bottleneck(inter);
      plan.push(
        matrix(`${p}.router.router_enc.weight`, r, hidden),
        { name: `${p}.router.router_norm.weight`, shape: [r], std: 0, mean: 1 },
        matrix(`${p}.router.router_dec.weight`, hidden, r),
        matrix(`${p}.router.router_head.weight`, 1, hidden, o.routerScale),
        matrix(`${p}.router_proj.gate_proj.weight`, a, hidden),
        matrix(`${p}.router_proj.down_proj.weight`, a, hidden),
        matrix(`${p}.router_proj.up_proj.weight`, hidden, a, branch * 2),
      );
    }
  }
  plan.push(norm("model.norm.weight", hidden));
  // Logits with a spread of a few units, so greedy picks are decisive and sampling is not uniform.
  if (!o.tieEmbeddings) plan.push(matrix("lm_head.weight", vocab, hidden, 3));
  return plan;
}

/**
 * Qwen3's per-head q/k norm weights (spread wider than the layer norms, so that they matter), Qwen2's q/k/v
 * biases (of the order of the projections' outputs).
 */
function headTensors(o: ResolvedDemoOptions, p: string, qRows: number, kvRows: number): TensorPlan[] {
  const a = `${p}.self_attn`;
  const vector = (name: string, size: number, std: number, mean: number) => ({
    name,
    shape: [size],
    std,
    mean,
  });
  if (o.arch === "qwen3") {
    return [vector(`${a}.q_norm.weight`, o.headDim, 0.3, 1), vector(`${a}.k_norm.weight`, o.headDim, 0.3, 1)];
  }
  if (o.arch !== "qwen2") return [];
  return [
    vector(`${a}.q_proj.bias`, qRows, 0.5, 0),
    vector(`${a}.k_proj.bias`, kvRows, 0.5, 0),
    vector(`${a}.v_proj.bias`, kvRows, 0.5, 0),
  ];
}

export function elementCount(t: TensorPlan): number {
  return t.shape.reduce((a, b) => a * b, 1);
}

/** `count` values of a tensor (its first, or a repeating block), encoded in the options' dtype. */
export function tensorValues(t: TensorPlan, o: ResolvedDemoOptions, count: number): Uint8Array {
  const values = randomNormal(fnv1a(`${o.seed}:${t.name}`), count, t.std);
  if (t.mean !== 0) { for (let i = 0; i < count; i++) values[i] += t.mean; }
  return encodeFromF32(o.dtype, values);
}
