/**
 * `config.json` of a Hugging Face Llama (or FlexiDepth `ddllama`), Qwen2/2.5 or Qwen3 (or DMTD `dmtdqwen3`)
 * checkpoint → a checked ModelConfig.
 */

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

/** The decoder families this engine runs: Llama, Qwen2/2.5 (q/k/v biases), Qwen3 (per-head q/k RMSNorm). */
export type Architecture = "llama" | "qwen2" | "qwen3";

/**
 * DMTD (Direct Multi-Token Decoding, ../shared/design/dmtd-spec.md §2): layers [0, T) think, [T, T + D) decode,
 * and a cycle of τ tokens runs the thinking layers once (at its head).
 */
export interface DmtdConfig {
  /** `num_encoding_layers`: always 0 (the released split; more is refused). */
  encodingLayers: number;
  /** `num_thinking_layers` T. */
  thinkingLayers: number;
  /** `num_decoding_layers` D (T + D = num_hidden_layers). */
  decodingLayers: number;
  /** `mtp_horizon` τ ≥ 1: tokens per cycle. */
  cycle: number;
}

export interface ModelConfig {
  modelType: string;
  architecture: Architecture;
  /** Qwen3: q and k of every head RMS-normalized (`q_norm`, `k_norm`: [head_dim]) after the projection. */
  qkNorm: boolean;
  /** Qwen2/2.5: q, k and v projections have biases (o_proj has none). */
  attentionBias: boolean;
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
  /** DMTD's layer split and cycle when the config names them (parsed only: decoding does not use it yet). */
  dmtd: DmtdConfig | null;
}

/** model_type → architecture. */
const MODEL_TYPES: Record<string, Architecture> = {
  llama: "llama",
  ddllama: "llama",
  qwen2: "qwen2",
  qwen3: "qwen3",
  dmtdqwen3: "qwen3",
};

/** `architectures` entries → architecture, for configs whose model_type is not one of the above. */
const ARCHITECTURE_CLASSES: Record<string, Architecture> = {
  LlamaForCausalLM: "llama",
  DDLlamaForCausalLM: "llama",
  Qwen2ForCausalLM: "qwen2",
  Qwen3ForCausalLM: "qwen3",
  DMTDQwen3ForCausalLM: "qwen3",
};

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

/**
 * Which decoder family the config describes: model_type, else (none given) `architectures`, else FlexiDepth
 * keys (a Llama). A model_type of another family is refused even when `architectures` names one of ours.
 */
function parseArchitecture(cfg: Json, modelType: string, where: string): Architecture {
  const byType = Object.hasOwn(MODEL_TYPES, modelType) ? MODEL_TYPES[modelType] : undefined;
  if (byType) return byType;
  const classes = Array.isArray(cfg.architectures) && modelType === "" ? cfg.architectures : [];
  for (const c of classes) {
    if (typeof c === "string" && Object.hasOwn(ARCHITECTURE_CLASSES, c)) return ARCHITECTURE_CLASSES[c];
  }
  if (Array.isArray(cfg.routing_layers)) return "llama";
  throw new CheckpointError(
    `${where}: unsupported architecture "${clip(modelType) || "(none)"}"`,
    "flexidepth runs Llama, Qwen2/2.5 and Qwen3 checkpoints (model_type llama, ddllama, qwen2, qwen3 or " +
      "dmtdqwen3)",
  );
}

/**
 * What the attention projections carry besides their weights: Qwen2/2.5 has q/k/v biases (always, as
 * transformers builds it); Llama and Qwen3 have none unless `attention_bias`, which also gives o_proj one.
 */
function checkAttention(cfg: Json, arch: Architecture, where: string): void {
  if (cfg.hidden_act !== undefined && cfg.hidden_act !== "silu") {
    throw new CheckpointError(
      `${where}: hidden_act ${show(cfg.hidden_act)} is not supported`,
      "only silu (SwiGLU)",
    );
  }
  if (cfg.mlp_bias === true) {
    throw new CheckpointError(
      `${where}: MLP biases are not supported`,
      "only bias-free MLPs (mlp_bias false)",
    );
  }
  if (arch !== "qwen2" && cfg.attention_bias === true) {
    throw new CheckpointError(
      `${where}: attention biases (attention_bias true) are not supported for ${arch}: they include o_proj's`,
      "only q/k/v biases as Qwen2/2.5 has them; use a checkpoint with attention_bias false",
    );
  }
  if (cfg.use_sliding_window === true) {
    throw new CheckpointError(
      `${where}: sliding-window attention (use_sliding_window true) is not supported`,
      "flexidepth attends to the whole context: set use_sliding_window to false in config.json (Qwen " +
        "checkpoints are trained without it) and keep prompts within the window",
    );
  }
}

/** RoPE θ from the top level (`rope_theta`) or, as transformers ≥ 5 writes it, `rope_parameters.rope_theta`. */
function parseRopeTheta(cfg: Json, params: Json | null, where: string): number {
  const top = cfg.rope_theta ?? null, nested = params?.rope_theta ?? null;
  if (top !== null && nested !== null && top !== nested) {
    throw new CheckpointError(
      `${where}: rope_theta ${show(top)} and rope_parameters.rope_theta ${show(nested)} disagree`,
      "remove one of them from config.json",
    );
  }
  if (nested !== null) return num(params!, "rope_theta", `${where} rope_parameters`, 10000);
  return num(cfg, "rope_theta", where, 10000);
}

/** `rope_parameters` (transformers ≥ 5: RoPE θ with the scaling's type and factors), when present. */
function ropeParameters(cfg: Json, where: string): Json | null {
  const v = cfg.rope_parameters;
  if (v === undefined || v === null) return null;
  if (typeof v !== "object" || Array.isArray(v)) {
    throw new CheckpointError(
      `${where}: "rope_parameters" must be an object`,
      "fix the value in config.json",
    );
  }
  return v as Json;
}

/** RoPE scaling from `rope_scaling`, else from `rope_parameters` (its type "default" is no scaling). */
function parseScaling(cfg: Json, params: Json | null, where: string): RopeScaling | null {
  if (cfg.rope_scaling !== undefined && cfg.rope_scaling !== null) {
    return parseRopeScaling(cfg.rope_scaling, where);
  }
  if (!params || (params.rope_type ?? params.type ?? "default") === "default") return null;
  return parseRopeScaling(params, `${where} rope_parameters`);
}

/**
 * DMTD's keys (dmtd-spec.md §2.1, §2.3): `num_thinking_layers` T + `num_decoding_layers` D = the depth,
 * `num_encoding_layers` 0 or absent, `mtp_horizon` τ ≥ 1. Null when the config names none of them (and is not
 * a dmtdqwen3).
 */
function parseDmtd(cfg: Json, modelType: string, numLayers: number, where: string): DmtdConfig | null {
  const keys = ["num_encoding_layers", "num_thinking_layers", "num_decoding_layers", "mtp_horizon"];
  if (modelType !== "dmtdqwen3" && keys.every((k) => cfg[k] === undefined || cfg[k] === null)) return null;
  const fix = "a DMTD config.json names num_thinking_layers T and num_decoding_layers D (T + D = " +
    "num_hidden_layers) and mtp_horizon τ (the cycle length, e.g. 4)";
  for (const k of keys.slice(1)) {
    if (cfg[k] === undefined || cfg[k] === null) {
      throw new CheckpointError(`${where}: DMTD key "${k}" missing`, fix);
    }
  }
  const enc = cfg.num_encoding_layers ?? 0;
  if (enc !== 0) {
    throw new CheckpointError(
      `${where}: num_encoding_layers ${show(enc)} is not supported (only 0, the released DMTD split)`,
      "set num_encoding_layers to 0 (or remove it) and count those layers in num_thinking_layers",
    );
  }
  const thinking = int(cfg, "num_thinking_layers", where), decoding = int(cfg, "num_decoding_layers", where);
  if (thinking + decoding !== numLayers) {
    throw new CheckpointError(
      `${where}: num_thinking_layers ${thinking} + num_decoding_layers ${decoding} is not num_hidden_layers ` +
        `${numLayers}`,
      `fix the split in config.json: the two must add up to ${numLayers}`,
    );
  }
  return {
    encodingLayers: 0,
    thinkingLayers: thinking,
    decodingLayers: decoding,
    cycle: int(cfg, "mtp_horizon", where),
  };
}

/** FlexiDepth's routed layers: indices into the depth, sorted and without repeats. */
function parseRoutingLayers(cfg: Json, numLayers: number, where: string): number[] {
  const routingLayers = Array.isArray(cfg.routing_layers) ? (cfg.routing_layers as unknown[]) : [];
  for (const l of routingLayers) {
    if (typeof l !== "number" || !Number.isInteger(l) || l < 0 || l >= numLayers) {
      throw new CheckpointError(
        `${where}: routing_layers entry ${show(l)} is not a layer index in 0..${numLayers - 1}`,
      );
    }
  }
  return [...new Set(routingLayers as number[])].sort((a, b) => a - b);
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
  const architecture = parseArchitecture(cfg, modelType, where);
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
  checkAttention(cfg, architecture, where);
  const rope = ropeParameters(cfg, where);
  const optFactor = (
    key: string,
  ) => (cfg[key] === undefined || cfg[key] === null ? null : int(cfg, key, where));
  return {
    modelType,
    architecture,
    qkNorm: architecture === "qwen3",
    attentionBias: architecture === "qwen2",
    hiddenSize,
    intermediateSize: int(cfg, "intermediate_size", where),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: int(cfg, "vocab_size", where),
    maxPositions: int(cfg, "max_position_embeddings", where, 2048),
    rmsNormEps: num(cfg, "rms_norm_eps", where, 1e-6),
    ropeTheta: parseRopeTheta(cfg, rope, where),
    ropeScaling: parseScaling(cfg, rope, where),
    tieWordEmbeddings: cfg.tie_word_embeddings === true,
    bosTokenId: typeof cfg.bos_token_id === "number" ? cfg.bos_token_id : null,
    eosTokenIds: tokenIds(cfg.eos_token_id),
    torchDtype: parseDtype(cfg.torch_dtype ?? cfg.dtype), // transformers ≥ 5 writes "dtype"
    routingLayers: parseRoutingLayers(cfg, numLayers, where),
    routerReductionFactor: optFactor("router_reduction_factor"),
    projReductionFactor: optFactor("proj_reduction_factor"),
    dmtd: parseDmtd(cfg, modelType, numLayers, where),
  };
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
