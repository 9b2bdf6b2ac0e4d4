/** `config.json` of a Hugging Face Llama (or FlexiDepth `ddllama`) checkpoint → a checked ModelConfig. */

import { CheckpointError } from "../errors.ts";
import type { DType } from "./dtype.ts";
import { clip, show } from "./safetensors.ts";

export interface RopeScaling {
  /** "default" | "linear" | "llama3" */
  type: string;
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

/** DMTD (direct multi-token decoding): layers [0, T) think once per cycle of τ tokens, [T, T + D) decode every token. */
export interface DmtdConfig {
  /** Always 0 (the released checkpoint's encoding layers). */
  encodingLayers: number;
  thinkingLayers: number;
  decodingLayers: number;
  /** τ: tokens per cycle (`mtp_horizon`). */
  cycle: number;
}

export interface ModelConfig {
  modelType: string;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** dtype named by the config (`torch_dtype`), informative only: tensors carry their own. */
  torchDtype: DType | null;
  /** FlexiDepth: indices of routed layers (empty for a plain Llama). */
  routingLayers: number[];
  /** FlexiDepth bottleneck reduction factors when the config names them (else inferred from shapes). */
  routerReductionFactor: number | null;
  projReductionFactor: number | null;
  /** DMTD layer groups and cycle (null: every token runs every layer). */
  dmtd: DmtdConfig | null;
}

/** Architectures this engine runs. */
const SUPPORTED_TYPES = new Set(["llama", "ddllama"]);

type Json = Record<string, unknown>;

function int(cfg: Json, key: string, where: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (v === undefined || v === null) {
    throw new CheckpointError(
      `${where}: missing key "${key}"`,
      "the config.json is incomplete; re-download the checkpoint or add the key",
    );
  }
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0 || v > 2 ** 31) {
    throw new CheckpointError(
      `${where}: "${key}" must be a positive integer, got ${show(v)}`,
      "fix the value in config.json",
    );
  }
  return v;
}

function num(cfg: Json, key: string, where: string, fallback: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new CheckpointError(`${where}: "${key}" must be a positive number, got ${show(v)}`);
  }
  return v;
}

function tokenIds(v: unknown): number[] {
  if (typeof v === "number" && Number.isInteger(v)) return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === "number" && Number.isInteger(x));
  return [];
}

function parseDtype(v: unknown): DType | null {
  switch (v) {
    case "float32":
      return "F32";
    case "float16":
      return "F16";
    case "bfloat16":
      return "BF16";
    default:
      return null;
  }
}

function parseRopeScaling(v: unknown, where: string): RopeScaling | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "object") throw new CheckpointError(`${where}: "rope_scaling" must be an object`);
  const r = v as Json;
  const given = r.rope_type ?? r.type ?? "default";
  // Only strings: String() of a deeply nested array overflows the stack.
  const type = typeof given === "string" ? given : show(given);
  if (!["default", "linear", "llama3"].includes(type)) {
    throw new CheckpointError(
      `${where}: unsupported rope_scaling type "${clip(type)}"`,
      "supported: default, linear, llama3",
    );
  }
  return {
    type,
    factor: num(r, "factor", where, 1),
    lowFreqFactor: num(r, "low_freq_factor", where, 1),
    highFreqFactor: num(r, "high_freq_factor", where, 4),
    originalMaxPositions: int(r, "original_max_position_embeddings", where, 8192),
  };
}

/** Parses and checks a config.json object; `where` names the file in error messages. */
export function parseConfig(json: unknown, where = "config.json"): ModelConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new CheckpointError(`${where}: not a JSON object`);
  }
  const cfg = json as Json;
  const modelType = typeof cfg.model_type === "string"
    ? cfg.model_type
    : cfg.model_type == null
    ? ""
    : show(cfg.model_type); // not String(): a deeply nested array overflows the stack
  const hasRouting = Array.isArray(cfg.routing_layers);
  if (!SUPPORTED_TYPES.has(modelType) && !hasRouting) {
    throw new CheckpointError(
      `${where}: unsupported architecture "${clip(modelType) || "(none)"}"`,
      "flexidepth runs Llama-architecture checkpoints (model_type llama or ddllama)",
    );
  }
  const hiddenSize = int(cfg, "hidden_size", where);
  const numHeads = int(cfg, "num_attention_heads", where);
  const numKvHeads = int(cfg, "num_key_value_heads", where, numHeads);
  const headDim = int(cfg, "head_dim", where, Math.floor(hiddenSize / numHeads));
  const numLayers = int(cfg, "num_hidden_layers", where);
  if (numHeads % numKvHeads !== 0) {
    throw new CheckpointError(
      `${where}: num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads})`,
    );
  }
  if (headDim % 2 !== 0) throw new CheckpointError(`${where}: head_dim ${headDim} must be even for RoPE`);
  if (cfg.hidden_act !== undefined && cfg.hidden_act !== "silu") {
    throw new CheckpointError(
      `${where}: hidden_act ${show(cfg.hidden_act)} is not supported`,
      "only silu (SwiGLU)",
    );
  }
  if (cfg.attention_bias === true || cfg.mlp_bias === true) {
    throw new CheckpointError(`${where}: attention or MLP biases are not supported`);
  }
  const routingLayers = hasRouting ? (cfg.routing_layers as unknown[]) : [];
  for (const l of routingLayers) {
    if (typeof l !== "number" || !Number.isInteger(l) || l < 0 || l >= numLayers) {
      throw new CheckpointError(
        `${where}: routing_layers entry ${show(l)} is not a layer index in 0..${numLayers - 1}`,
      );
    }
  }
  const optFactor = (
    key: string,
  ) => (cfg[key] === undefined || cfg[key] === null ? null : int(cfg, key, where));
  return {
    modelType,
    hiddenSize,
    intermediateSize: int(cfg, "intermediate_size", where),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: int(cfg, "vocab_size", where),
    maxPositions: int(cfg, "max_position_embeddings", where, 2048),
    rmsNormEps: num(cfg, "rms_norm_eps", where, 1e-6),
    ropeTheta: num(cfg, "rope_theta", where, 10000),
    ropeScaling: parseRopeScaling(cfg.rope_scaling, where),
    tieWordEmbeddings: cfg.tie_word_embeddings === true,
    bosTokenId: typeof cfg.bos_token_id === "number" ? cfg.bos_token_id : null,
    eosTokenIds: tokenIds(cfg.eos_token_id),
    torchDtype: parseDtype(cfg.torch_dtype),
    routingLayers: [...new Set(routingLayers as number[])].sort((a, b) => a - b),
    routerReductionFactor: optFactor("router_reduction_factor"),
    projReductionFactor: optFactor("proj_reduction_factor"),
    dmtd: parseDmtd(cfg, numLayers, where),
  };
}

/** The fewest layers a token's pass can run: a DMTD model's decoding layers, a FlexiDepth model's unrouted ones. */
export function fewestLayers(cfg: Pick<ModelConfig, "numLayers" | "routingLayers" | "dmtd">): number {
  return cfg.dmtd ? cfg.dmtd.decodingLayers : cfg.numLayers - cfg.routingLayers.length;
}

/** The DMTD keys, when the config has them: T thinking and D decoding layers making up the model, τ ≥ 1. */
function parseDmtd(cfg: Json, numLayers: number, where: string): DmtdConfig | null {
  if (cfg.num_thinking_layers === undefined && cfg.num_decoding_layers === undefined) return null;
  const encodingLayers = cfg.num_encoding_layers ?? 0;
  if (encodingLayers !== 0) {
    throw new CheckpointError(
      `${where}: num_encoding_layers ${show(encodingLayers)} is not supported`,
      "DMTD models here have 0",
    );
  }
  const thinkingLayers = int(cfg, "num_thinking_layers", where);
  const decodingLayers = int(cfg, "num_decoding_layers", where);
  if (thinkingLayers + decodingLayers !== numLayers) {
    throw new CheckpointError(
      `${where}: num_thinking_layers ${thinkingLayers} + num_decoding_layers ${decodingLayers} ≠ num_hidden_layers ${numLayers}`,
      "fix the layer split in config.json",
    );
  }
  return { encodingLayers: 0, thinkingLayers, decodingLayers, cycle: int(cfg, "mtp_horizon", where, 4) };
}

/**
 * Inverse frequencies of RoPE for one head, with Llama-3 / linear scaling applied, exactly as
 * transformers' `_compute_llama3_parameters`. Uploaded once; the RoPE kernel reads them.
 */
export function ropeInvFreq(cfg: ModelConfig): Float32Array {
  const half = cfg.headDim / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) out[i] = 1 / cfg.ropeTheta ** ((2 * i) / cfg.headDim);
  const s = cfg.ropeScaling;
  if (!s || s.type === "default") return out;
  if (s.type === "linear") return out.map((f) => f / s.factor);
  const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositions / s.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const wavelen = (2 * Math.PI) / out[i];
    if (wavelen > lowWavelen) {
      out[i] = out[i] / s.factor;
    } else if (wavelen >= highWavelen) {
      const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) /
        (s.highFreqFactor - s.lowFreqFactor);
      out[i] = (1 - smooth) * (out[i] / s.factor) + smooth * out[i];
    }
  }
  return out;
}
