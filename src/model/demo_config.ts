/**
 * The demo model's options and what follows from them alone: the defaults, the preset shapes, config.json
 * and generation_config.json. The tensors are in ./demo_tensors.ts; the files in ./demo.ts.
 */

import { CheckpointError } from "../errors.ts";
import type { Architecture } from "./config.ts";
import { type DType, isDType } from "./dtype.ts";

export interface DemoOptions {
  /**
   * "llama" (default; ddllama when routed), or a Qwen layout with the real Qwen3 tokenizer: "qwen3" (per-head
   * q/k norms, RoPE θ in `rope_parameters`) or "qwen2" (q/k/v biases, top-level `rope_theta`). Routers make
   * any of them a FlexiDepth model.
   */
  arch?: Architecture;
  seed?: number;
  layers?: number;
  hidden?: number;
  heads?: number;
  kvHeads?: number;
  headDim?: number;
  intermediate?: number;
  /** default BF16 */
  dtype?: DType;
  maxPositions?: number;
  tieEmbeddings?: boolean;
  /** >1 writes model-0000i-of-0000n.safetensors + index */
  shards?: number;
  /** ddllama when non-empty */
  routingLayers?: number[];
  /** Spread of the router logits: larger → gates further from 0.5 (default 1). */
  routerScale?: number;
  /** Written to config.json as is (Hugging Face form, e.g. `{rope_type: "llama3", factor: 8, ...}`). */
  ropeScaling?: object | null;
  /** defaults to the tokenizer's size (128256; Qwen: 151936); smaller values make small files for tests */
  vocabSize?: number;
}

export type ResolvedDemoOptions = Required<DemoOptions>;

/** Size of the Llama-3 tokenizer's vocabulary (128000 BPE pieces + 256 special tokens). */
export const LLAMA3_VOCAB_SIZE = 128256;
const BOS_ID = 128000;
/** <|end_of_text|> and <|eot_id|> (the chat template ends turns with the latter). */
const EOS_IDS = [128001, 128009];
/** Qwen3-4B's vocabulary (its embedding rows: the Qwen3 tokenizer's 151669 ids, padded). */
export const QWEN_VOCAB_SIZE = 151936;
/** Qwen's <|endoftext|>, and its turn end <|im_end|> (which the chat template ends turns with). */
const QWEN_BOS_ID = 151643;
const QWEN_EOS_IDS = [151645, 151643];
/** FlexiDepth's default bottleneck divisor for routers and adapters. */
export const REDUCTION_FACTOR = 16;

/** The model the CLI runs when no --model is given. */
export const DEFAULT_DEMO_MODEL: DemoOptions = {
  layers: 4,
  hidden: 128,
  heads: 4,
  kvHeads: 2,
  headDim: 32,
  intermediate: 352,
  dtype: "BF16",
  // FlexiDepth routers on the last half of the layers, so the default model shows routing.
  routingLayers: [2, 3],
};

export function defaultDemoOptions(arch: Architecture = "llama"): ResolvedDemoOptions {
  return {
    arch,
    seed: 1,
    layers: 4,
    hidden: 64,
    heads: 4,
    kvHeads: 2,
    headDim: 16,
    intermediate: 176,
    dtype: "BF16",
    maxPositions: 2048,
    tieEmbeddings: false,
    shards: 1,
    routingLayers: [],
    routerScale: 1,
    ropeScaling: null,
    vocabSize: arch === "llama" ? LLAMA3_VOCAB_SIZE : QWEN_VOCAB_SIZE,
  };
}

/** The options with the defaults filled in (an option given as undefined takes its default). */
export function resolveDemoOptions(opts: DemoOptions): ResolvedDemoOptions {
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  return { ...defaultDemoOptions(opts.arch), ...given };
}

/** config.json of a demo model, as Hugging Face writes it for its architecture (ddllama when a routed Llama). */
export function demoConfigJson(o: ResolvedDemoOptions): Record<string, unknown> {
  const routed = o.routingLayers.length > 0;
  const shape = {
    hidden_size: o.hidden,
    intermediate_size: o.intermediate,
    num_hidden_layers: o.layers,
    num_attention_heads: o.heads,
    num_key_value_heads: o.kvHeads,
    head_dim: o.headDim,
    vocab_size: o.vocabSize,
    max_position_embeddings: o.maxPositions,
  };
  return {
    ...(o.arch === "llama" ? llamaConfig(o, routed, shape) : qwenConfig(o, shape)),
    hidden_act: "silu",
    torch_dtype: { F32: "float32", F16: "float16", BF16: "bfloat16" }[o.dtype],
    ...(routed
      ? {
        routing_layers: o.routingLayers,
        router_reduction_factor: REDUCTION_FACTOR,
        proj_reduction_factor: REDUCTION_FACTOR,
      }
      : {}),
    flexidepth_demo: "random weights, not a trained model",
  };
}

function llamaConfig(o: ResolvedDemoOptions, routed: boolean, shape: object): Record<string, unknown> {
  return {
    architectures: [routed ? "DDLlamaForCausalLM" : "LlamaForCausalLM"],
    model_type: routed ? "ddllama" : "llama",
    ...shape,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    rope_scaling: o.ropeScaling,
    tie_word_embeddings: o.tieEmbeddings,
    bos_token_id: BOS_ID,
    eos_token_id: EOS_IDS,
    attention_bias: false,
    mlp_bias: false,
  };
}

/**
 * Qwen3 as transformers ≥ 5 writes it (RoPE θ in `rope_parameters`), Qwen2/2.5 as older versions do (top-level
 * `rope_theta`, `rope_scaling`), so both layouts are exercised; sliding windows off, as released.
 */
function qwenConfig(o: ResolvedDemoOptions, shape: object): Record<string, unknown> {
  const qwen3 = o.arch === "qwen3";
  return {
    architectures: [qwen3 ? "Qwen3ForCausalLM" : "Qwen2ForCausalLM"],
    model_type: o.arch,
    ...shape,
    rms_norm_eps: 1e-6,
    ...(qwen3
      ? { rope_parameters: { rope_type: "default", ...o.ropeScaling, rope_theta: 1000000 } }
      : { rope_theta: 1000000.0, rope_scaling: o.ropeScaling }),
    tie_word_embeddings: o.tieEmbeddings,
    use_sliding_window: false,
    sliding_window: qwen3 ? null : 32768,
    max_window_layers: o.layers,
    attention_dropout: 0,
    // Qwen3 names its (absent) biases; Qwen2's q/k/v biases are not configurable.
    ...(qwen3 ? { attention_bias: false } : {}),
    bos_token_id: QWEN_BOS_ID,
    eos_token_id: QWEN_EOS_IDS[0],
  };
}

/** generation_config.json of a demo model: its tokenizer's BOS and end-of-turn tokens. */
export function demoGenerationConfigJson(
  arch: Architecture = "llama",
): { bos_token_id: number; eos_token_id: number[] } {
  return arch === "llama"
    ? { bos_token_id: BOS_ID, eos_token_id: EOS_IDS }
    : { bos_token_id: QWEN_BOS_ID, eos_token_id: QWEN_EOS_IDS };
}

/** The options resolved, and checked where config.json does not check them: what a generator starts from. */
export function checkedDemoOptions(opts: DemoOptions): ResolvedDemoOptions {
  const o = resolveDemoOptions(opts);
  checkExtraOptions(o);
  return o;
}

/** Checks the options that config.json does not check (parseConfig checks the others). */
function checkExtraOptions(o: ResolvedDemoOptions): void {
  const bad = (what: string) => new CheckpointError(`demo model: ${what}`, "fix the demo options");
  if (!isDType(o.dtype)) throw bad(`dtype ${JSON.stringify(o.dtype)} is not F32, F16 or BF16`);
  if (!["llama", "qwen2", "qwen3"].includes(o.arch)) {
    throw bad(`arch ${JSON.stringify(o.arch)} is not llama, qwen2 or qwen3`);
  }
  if (!Number.isSafeInteger(o.seed)) throw bad(`seed ${o.seed} is not an integer`);
  if (!Number.isFinite(o.routerScale)) throw bad(`routerScale ${o.routerScale} is not a finite number`);
  if (!Number.isInteger(o.shards) || o.shards < 1 || o.shards > 99999) {
    throw bad(`shards ${o.shards} is not an integer in 1..99999`);
  }
}

/**
 * Model shapes for `deno task bench --shape NAME`: random weights of a real model's size, built in memory
 * (no checkpoint download, nothing written but the config and tokenizer), routing on as FlexiDepth places it.
 */
export const SHAPES: Record<string, DemoOptions> = {
  // Llama-3-8B-Instruct with FlexiDepth routers on layers 16–31, as released.
  "llama3-8b": {
    layers: 32,
    hidden: 4096,
    heads: 32,
    kvHeads: 8,
    headDim: 128,
    intermediate: 14336,
    dtype: "BF16",
    maxPositions: 8192,
    routingLayers: Array.from({ length: 16 }, (_, i) => 16 + i),
  },
  // Llama-3.2-1B's shape (tied embeddings) with routers on its last half: big enough that decode is bound by
  // the weights even on a CPU software GPU, where the demo model is bound by per-dispatch cost.
  "llama3-1b": {
    layers: 16,
    hidden: 2048,
    heads: 32,
    kvHeads: 8,
    headDim: 64,
    intermediate: 8192,
    dtype: "BF16",
    maxPositions: 8192,
    tieEmbeddings: true,
    routingLayers: Array.from({ length: 8 }, (_, i) => 8 + i),
  },
  // The same structure in miniature (tests): the default demo model.
  "tiny": DEFAULT_DEMO_MODEL,
};
