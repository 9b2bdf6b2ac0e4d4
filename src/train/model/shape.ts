/**
 * The shape of the model a run trains: the base's config (or a pretrain's), which layers are routed and the
 * widths of their routers and adapters, and DMTD's layer split and cycle. Named presets give pretrain shapes.
 */

import { type ModelConfig, parseConfig } from "../../model/config.ts";
import { REDUCTION_FACTOR } from "../../model/demo_config.ts";
import { TrainError } from "../errors.ts";

export interface TrainShape {
  cfg: ModelConfig;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  qkNorm: boolean;
  tiedEmbeddings: boolean;
  /** FlexiDepth's routed layers (empty: none). */
  routed: number[];
  /** Router bottleneck (hidden / 16) and adapter width (intermediate / 16), at least 1. */
  bottleneck: number;
  adapter: number;
  /** DMTD: layers [0, thinking) think, the rest decode; a cycle of τ positions (null: not DMTD). */
  dmtd: { thinking: number; cycle: number } | null;
}

export interface ShapeOptions {
  routed?: number[];
  dmtd?: { thinking: number; cycle: number } | null;
}

export function trainShape(cfg: ModelConfig, o: ShapeOptions = {}): TrainShape {
  if (cfg.architecture === "qwen2") {
    throw new TrainError(
      "training a Qwen2 (q/k/v biases) is not supported",
      "train a Llama or Qwen3 model",
    );
  }
  const routed = [...(o.routed ?? [])].sort((a, b) => a - b);
  for (const l of routed) {
    if (!Number.isInteger(l) || l < 0 || l >= cfg.numLayers) {
      throw new TrainError(
        `routed layer ${l} is not a layer of this ${cfg.numLayers}-layer model`,
        `pass --layers within 0-${cfg.numLayers - 1}`,
      );
    }
  }
  return {
    cfg,
    hidden: cfg.hiddenSize,
    intermediate: cfg.intermediateSize,
    layers: cfg.numLayers,
    heads: cfg.numHeads,
    kvHeads: cfg.numKvHeads,
    headDim: cfg.headDim,
    vocab: cfg.vocabSize,
    qkNorm: cfg.qkNorm,
    tiedEmbeddings: cfg.tieWordEmbeddings,
    routed,
    bottleneck: Math.max(1, Math.floor(cfg.hiddenSize / (cfg.routerReductionFactor ?? REDUCTION_FACTOR))),
    adapter: Math.max(1, Math.floor(cfg.intermediateSize / (cfg.projReductionFactor ?? REDUCTION_FACTOR))),
    dmtd: o.dmtd ?? null,
  };
}

/** Routed layers by default: the later half, as the release routes layers 16–31 of 32. */
export function defaultRoutedLayers(layers: number): number[] {
  return Array.from({ length: layers - Math.floor(layers / 2) }, (_, i) => Math.floor(layers / 2) + i);
}

/** Named pretrain shapes (the vocabulary comes from the tokenizer). */
export const SHAPE_PRESETS: Record<string, Record<string, unknown>> = {
  /** stories260K's shape: 5 layers of 64, 8 heads over 4 KV heads. */
  "stories260K": {
    model_type: "llama",
    hidden_size: 64,
    intermediate_size: 172,
    num_hidden_layers: 5,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    head_dim: 8,
    rope_theta: 10000,
  },
  /** About 10M parameters with a 512-token vocabulary: 8 layers of 320. */
  "llama-10m": {
    model_type: "llama",
    hidden_size: 320,
    intermediate_size: 864,
    num_hidden_layers: 8,
    num_attention_heads: 5,
    num_key_value_heads: 5,
    head_dim: 64,
    rope_theta: 10000,
  },
  /** About 1.7M parameters with a 512-token vocabulary: 8 layers of 128 (the bundled models' shape). */
  "llama-2m": {
    model_type: "llama",
    hidden_size: 128,
    intermediate_size: 352,
    num_hidden_layers: 8,
    num_attention_heads: 4,
    num_key_value_heads: 4,
    head_dim: 32,
    rope_theta: 10000,
  },
  /** A small Qwen3 (per-head q/k norms): 4 layers of 128. */
  "qwen3-tiny": {
    model_type: "qwen3",
    hidden_size: 128,
    intermediate_size: 384,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 32,
    rope_theta: 1000000,
  },
};

/** What a pretrain's config.json gets from its tokenizer. */
export interface TokenizerFacts {
  vocabSize: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

/** A pretrain's config.json: a preset's or a given file's shape, the tokenizer's vocabulary and special ids. */
export function pretrainConfigJson(
  shape: Record<string, unknown>,
  tok: TokenizerFacts,
  maxPositions: number,
): Record<string, unknown> {
  const qwen = shape.model_type === "qwen3";
  return {
    architectures: [qwen ? "Qwen3ForCausalLM" : "LlamaForCausalLM"],
    rms_norm_eps: qwen ? 1e-6 : 1e-5,
    tie_word_embeddings: false,
    hidden_act: "silu",
    attention_bias: false,
    mlp_bias: false,
    ...shape,
    vocab_size: tok.vocabSize,
    max_position_embeddings: Math.max(maxPositions, Number(shape.max_position_embeddings ?? 0)),
    bos_token_id: tok.bosTokenId,
    eos_token_id: tok.eosTokenIds.length === 1 ? tok.eosTokenIds[0] : tok.eosTokenIds,
    torch_dtype: "float32",
  };
}

/** The pretrain's parsed config, with the preset's name or the file's path in any error. */
export function pretrainConfig(json: Record<string, unknown>, where: string): ModelConfig {
  return parseConfig(json, where);
}
