/**
 * The parameters a training stage has, by their Hugging Face names, and their first values:
 * - pretrain: every weight from random initialisation (normal(0, 0.02), the output projections of each layer
 *   scaled by 1/√(2·layers) as GPT-2 does, norm weights 1), or from a base to continue, every weight trained;
 * - flexidepth: the base's tensors frozen, routers and adapters added on the routed layers as the release
 *   initialises them (normal(0, 0.02), router norm weights 1) and trained;
 * - dmtd: the base's tensors, every one trained except the embedding and the LM head.
 * A frozen matrix from a 16-bit base stays in its dtype on the GPU (`heldDtype`); the rest is f32.
 */

import { decodeToF32, type DType } from "../../model/dtype.ts";
import type { Checkpoint } from "../../model/checkpoint.ts";
import { routerTensorNames } from "../../model/checkpoint.ts";
import { readTensorBytes } from "../../model/safetensors.ts";
import { randomNormal } from "../../util/random.ts";
import { TrainError } from "../errors.ts";
import type { ParamSpec } from "../params.ts";
import type { TrainShape } from "./shape.ts";

export type Stage = "pretrain" | "flexidepth" | "dmtd";
export const STAGES: Stage[] = ["pretrain", "flexidepth", "dmtd"];

/** The release's initial spread of routers and adapters, and ours of a model from scratch. */
export const INIT_STD = 0.02;

/** A tensor's name and shape, before it has values. */
export interface TensorSlot {
  name: string;
  shape: number[];
  /** Weights that a FlexiDepth layer adds (router and adapter). */
  routed?: boolean;
  /** Initialised to ones (norm weights). */
  ones?: boolean;
  /** An output projection (o_proj, down_proj): pretraining scales its initial spread down. */
  output?: boolean;
}

/** Every tensor of the model `s` describes, in a fixed order (embedding, layers, final norm, head). */
export function tensorSlots(s: TrainShape): TensorSlot[] {
  const { hidden: H, intermediate: I, heads, kvHeads, headDim: hd, vocab: V } = s;
  const slots: TensorSlot[] = [{ name: "model.embed_tokens.weight", shape: [V, H] }];
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}`;
    slots.push(
      { name: `${p}.input_layernorm.weight`, shape: [H], ones: true },
      { name: `${p}.self_attn.q_proj.weight`, shape: [heads * hd, H] },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kvHeads * hd, H] },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kvHeads * hd, H] },
      { name: `${p}.self_attn.o_proj.weight`, shape: [H, heads * hd], output: true },
    );
    if (s.qkNorm) {
      slots.push(
        { name: `${p}.self_attn.q_norm.weight`, shape: [hd], ones: true },
        { name: `${p}.self_attn.k_norm.weight`, shape: [hd], ones: true },
      );
    }
    slots.push(
      { name: `${p}.post_attention_layernorm.weight`, shape: [H], ones: true },
      { name: `${p}.mlp.gate_proj.weight`, shape: [I, H] },
      { name: `${p}.mlp.up_proj.weight`, shape: [I, H] },
      { name: `${p}.mlp.down_proj.weight`, shape: [H, I], output: true },
    );
    if (s.routed.includes(l)) slots.push(...routedSlots(s, l));
  }
  slots.push({ name: "model.norm.weight", shape: [H], ones: true });
  if (!s.tiedEmbeddings) slots.push({ name: "lm_head.weight", shape: [V, H] });
  return slots;
}

function routedSlots(s: TrainShape, layer: number): TensorSlot[] {
  const n = routerTensorNames(layer), H = s.hidden, B = s.bottleneck, A = s.adapter;
  return [
    { name: n.enc, shape: [B, H] },
    { name: n.norm, shape: [B], ones: true },
    { name: n.dec, shape: [H, B] },
    { name: n.head, shape: [1, H] },
    { name: n.gate, shape: [A, H] },
    { name: n.down, shape: [A, H] },
    { name: n.up, shape: [H, A] },
  ].map((t) => ({ ...t, routed: true }));
}

/** Whether `slot` trains in `stage`. */
export function trains(stage: Stage, slot: TensorSlot): boolean {
  if (stage === "pretrain") return true;
  if (stage === "flexidepth") return !!slot.routed;
  return slot.name !== "model.embed_tokens.weight" && slot.name !== "lm_head.weight";
}

/** A seed of its own for each tensor, so adding a tensor does not change the others' values. */
function seedOf(seed: number, name: string): number {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}

function initialValues(slot: TensorSlot, s: TrainShape, seed: number): Float32Array {
  const size = slot.shape.reduce((a, b) => a * b, 1);
  if (slot.ones) return new Float32Array(size).fill(1);
  const std = slot.output && !slot.routed ? INIT_STD / Math.sqrt(2 * s.layers) : INIT_STD;
  return randomNormal(seedOf(seed, slot.name), size, std);
}

/**
 * The stage's parameters with their first values: from `base` where it has the tensor (a new pretrain has none),
 * else initialised from `seed` (without a base every tensor is: benchmarks of a shape).
 */
export async function paramSpecs(
  stage: Stage,
  s: TrainShape,
  base: Checkpoint | null,
  seed: number,
): Promise<ParamSpec[]> {
  const specs: ParamSpec[] = [];
  for (const slot of tensorSlots(s)) {
    const info = base?.tensors.get(slot.name);
    if (!info && base && !slot.routed) {
      throw new TrainError(
        `the base model lacks ${slot.name}`,
        "pass --model a complete Llama or Qwen3 checkpoint folder",
      );
    }
    const trainable = trains(stage, slot);
    if (!info) {
      specs.push({ name: slot.name, shape: slot.shape, init: initialValues(slot, s, seed), trainable });
      continue;
    }
    const bytes = await readTensorBytes(info), dtype = heldDtype(info.dtype, slot.shape, trainable);
    const init = dtype === "F32" ? decodeToF32(info.dtype, bytes) : bytes;
    specs.push({ name: slot.name, shape: slot.shape, init, dtype, trainable });
  }
  return specs;
}

/**
 * The dtype a base tensor is held in on the GPU: a frozen matrix keeps its checkpoint's F16 or BF16 (half an
 * f32's bytes; the matmuls and the embedding gather widen it as they load, and nothing writes it), a matrix
 * that trains and every vector (norm weights) is f32. Checkpoints hold F32, F16 or BF16 alone
 * (src/model/dtype.ts); quantization is an inference load option that training does not use.
 */
export function heldDtype(dtype: DType, shape: number[], trainable: boolean): DType {
  return !trainable && shape.length === 2 ? dtype : "F32";
}
