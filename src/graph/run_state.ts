/**
 * Every buffer a step reads and writes, declared once and sized for the most rows a step may have (llama2.c's
 * RunState). The engine writes the step's inputs, the layers read and update the activations, the sampler
 * writes the outputs. Nothing here is allocated per step.
 */

import type { ModelConfig } from "../model/config.ts";
import { type BackendProfile, FEW_ROW_MAX } from "../gpu/profile.ts";
import { bufferFrom, rowTexture, storageBuffer, UNIFORM_WINDOW } from "../gpu/buffers.ts";
import type { BranchRows } from "../ops/route/gate.ts";
import { Attention } from "../ops/attention/attention.ts";
import { ropeTable } from "../ops/rope/table.ts";
import { mixBytes } from "../ops/dmtd/mix_rows.ts";
import { type QuantizedRow, quantizedRowTexture } from "../ops/matmul/quantize_x.ts";
import type { ModelWeights } from "./weights.ts";

/** What the engine writes before a step, and what it reads back after. */
export interface StepBuffers {
  /** Step {n_rows, n_out}. */
  step: GPUBuffer;
  /** Step {n_out}: the row count of the LM head. */
  outStep: GPUBuffer;
  /** Row {slot, pos} per row. */
  rows: GPUBuffer;
  /** Input token id per row; the sampler writes the next step's tokens here. */
  tokens: GPUBuffer;
  /** Row index per output (rows that get logits and a sampled token). */
  outRows: GPUBuffer;
  /** RNG counter per output. */
  positions: GPUBuffer;
  /** SampleParams per output. */
  sampleParams: GPUBuffer;
  /** Logits [maxOut, vocab]. */
  logits: GPUBuffer;
  /** Result slot per output: [token id, layers, route words…]. */
  result: GPUBuffer;
  /** Route words per row [maxRows, routeWords]: bit k = routed layer k ran. */
  routes: GPUBuffer;
}

/** Scratch of the routed layers, shared by all of them (one runs at a time). */
export interface RoutingState {
  /** Router bottleneck e per row, when W_enc is not stacked into [k; v]. */
  enc: GPUBuffer;
  kept: BranchRows;
  skipped: BranchRows;
  /** A branch's rows gathered into a dense block, and their {slot, pos}. */
  xBlock: GPUBuffer;
  rowsBlock: GPUBuffer;
  /** q of the kept rows (q is not stacked with [k; v] on a routed layer). */
  q: GPUBuffer;
}

/** What a DMTD model's step adds: the thinking layers' own rows, the embedding kept aside, the mix. */
export interface DmtdState {
  /** Step {n_rows} and {slot, pos} per row of the thinking layers (the prompt chunk, or the refill block). */
  thinkStep: GPUBuffer;
  thinkRows: GPUBuffer;
  /** The embedding of the thinking rows, added back into the decoding layers' input. */
  e: GPUBuffer;
  /** The mix table of the decoding layers' input (ops/dmtd/mix_rows.ts), written per step. */
  mix: GPUBuffer;
}

/** Scoring steps (`flexidepth eval`): a target token per output row, and its log-probability read back. */
export interface ScoringState {
  /** u32 per output row. */
  targets: GPUBuffer;
  /** (f32 log-probability bits, u32 greedy) per output row. */
  scores: GPUBuffer;
}

export interface RunState extends StepBuffers {
  /** The residual stream [rows, hidden]. */
  x: GPUBuffer;
  /** Stacked projection outputs per row: [q | k | v] (plain layers) or [k | v (| e)] (routed layers). */
  qkv: GPUBuffer;
  /** Attention output [rows, heads × head_dim]. */
  att: GPUBuffer;
  /** MLP (or adapter) activation [rows, intermediate]. */
  act: GPUBuffer;
  /** Final norm of the output rows [outputs, hidden]. */
  hn: GPUBuffer;
  /**
   * The norms of steps of up to FEW_ROW_MAX rows for the matmuls after them (the profile's `normsToTexture`),
   * a texture row each, else null.
   */
  xnTexture: GPUTexture | null;
  /** xnTexture's row 0 in int8 blocks, written by the same norm, for quantized matmuls' integer path. */
  xq: QuantizedRow | null;
  /** The norm kernel's buffer output beside xnTexture (never read). */
  xn: GPUBuffer | null;
  /** The final norm of a one-row step as a row texture, where the LM head reads x (texture weights). */
  hnTexture: GPUTexture | null;
  /** The LM head's (key, index) pairs for the sampler (with hnTexture). */
  headParts: GPUBuffer | null;
  /** [context, head_dim / 2] (cos, sin). */
  cosSin: GPUBuffer;
  /** Split attention's chunk states. */
  attentionScratch: GPUBuffer | null;
  routing: RoutingState | null;
  dmtd: DmtdState | null;
  scoring: ScoringState | null;
}

/** Route words per row (bit k of the row's words = the k-th routed layer ran). */
export function routeWords(cfg: ModelConfig): number {
  return Math.max(1, Math.ceil(cfg.routingLayers.length / 32));
}

/** Words per output in the result buffer: token id, layer count, then route bits. */
export function resultStride(cfg: ModelConfig): number {
  return 2 + routeWords(cfg);
}

/** Attention's shape in this model, but for the context (the KV cache's). */
export function attentionShape(cfg: ModelConfig, profile: BackendProfile) {
  return {
    numHeads: cfg.numHeads,
    numKvHeads: cfg.numKvHeads,
    headDim: cfg.headDim,
    kind: profile.attention,
  };
}

export interface RunStateSize {
  maxRows: number;
  /** Output rows a step may have: a sampled token per sequence, or a scored token per row. */
  maxOut: number;
  context: number;
  /** Scoring steps allocate their targets and scores. */
  scoring: boolean;
}

export function createRunState(
  device: GPUDevice,
  cfg: ModelConfig,
  weights: ModelWeights,
  profile: BackendProfile,
  size: RunStateSize,
): RunState {
  const { maxRows, maxOut } = size;
  const H = cfg.hiddenSize, qDim = cfg.numHeads * cfg.headDim;
  const f32 = (label: string, n: number) => storageBuffer(device, label, n * 4);
  // Matmul inputs: texture matmuls read a one-row step through a uniform window (gemv_tex.wgsl).
  const windowed = profile.weightStorage === "texture" ? "windowed" : "storage";
  const input = (label: string, n: number) => storageBuffer(device, label, n * 4, windowed);
  const widest = (of: (L: ModelWeights["layers"][number]) => number) => Math.max(...weights.layers.map(of));
  // Rows for any step that gemv_tex_rows takes: its norms go there too.
  const xnTexture = profile.normsToTexture ? rowTexture(device, "xn_texture", H, FEW_ROW_MAX) : null;
  const hnTexture = weights.lmHead.storage === "texture" && H * 4 <= UNIFORM_WINDOW
    ? rowTexture(device, "hn_texture", H)
    : null;
  const scratch = Attention.scratchBytes({ ...attentionShape(cfg, profile), context: size.context });
  return {
    ...stepBuffers(device, cfg, maxRows, maxOut),
    x: input("x", maxRows * H),
    qkv: f32("qkv", maxRows * widest((L) => L.qkv.rows)),
    att: input("att", maxRows * qDim),
    act: input("act", maxRows * Math.max(cfg.intermediateSize, widest((L) => L.router?.adapterUp.cols ?? 0))),
    hn: input("hn", maxOut * H),
    xnTexture,
    xq: xnTexture && profile.quantizedX && weights.quant
      ? { texture: quantizedRowTexture(device, H), format: weights.quant }
      : null,
    xn: xnTexture ? f32("xn", FEW_ROW_MAX * H) : null,
    hnTexture,
    headParts: hnTexture ? headPartsBuffer(device, cfg, weights) : null,
    cosSin: bufferFrom(device, "rope_cos_sin", ropeTable(cfg, size.context)),
    attentionScratch: scratch ? storageBuffer(device, "attention_parts", scratch) : null,
    routing: cfg.routingLayers.length ? routingState(device, weights, maxRows, input, f32, H, qDim) : null,
    dmtd: cfg.dmtd
      ? {
        thinkStep: storageBuffer(device, "think_step", 16),
        thinkRows: storageBuffer(device, "think_rows", maxRows * 8),
        e: input("embedding", maxRows * H),
        mix: storageBuffer(device, "mix", mixBytes(maxRows)),
      }
      : null,
    scoring: size.scoring
      ? {
        targets: storageBuffer(device, "targets", maxOut * 4),
        scores: storageBuffer(device, "scores", maxOut * 8),
      }
      : null,
  };
}

function stepBuffers(device: GPUDevice, cfg: ModelConfig, maxRows: number, maxOut: number): StepBuffers {
  return {
    step: storageBuffer(device, "step", 16),
    outStep: storageBuffer(device, "out_step", 16),
    rows: storageBuffer(device, "rows", maxRows * 8),
    tokens: storageBuffer(device, "tokens", Math.max(maxRows, maxOut) * 4),
    outRows: storageBuffer(device, "out_rows", maxOut * 4),
    positions: storageBuffer(device, "positions", maxOut * 4),
    sampleParams: storageBuffer(device, "sample_params", maxOut * 16),
    logits: storageBuffer(device, "logits", maxOut * cfg.vocabSize * 4),
    result: storageBuffer(device, "result", maxOut * resultStride(cfg) * 4),
    routes: storageBuffer(device, "routes", maxRows * routeWords(cfg) * 4),
  };
}

/** Room for one (key, index) pair per invocation of the LM head's one-row kernel, every part. */
function headPartsBuffer(device: GPUDevice, cfg: ModelConfig, weights: ModelWeights): GPUBuffer {
  return storageBuffer(
    device,
    "head_parts",
    (Math.ceil(cfg.vocabSize / 4) + weights.lmHead.parts.length) * 8,
  );
}

function routingState(
  device: GPUDevice,
  weights: ModelWeights,
  maxRows: number,
  input: (label: string, n: number) => GPUBuffer,
  f32: (label: string, n: number) => GPUBuffer,
  H: number,
  qDim: number,
): RoutingState {
  const bottleneck = Math.max(...weights.layers.map((L) => L.router?.bottleneck ?? 0));
  const branch = (name: string): BranchRows => ({
    step: storageBuffer(device, `${name}_step`, 16),
    idx: storageBuffer(device, `${name}_idx`, maxRows * 4),
    g: f32(`${name}_g`, maxRows),
  });
  return {
    enc: f32("router_enc", maxRows * bottleneck),
    kept: branch("kept"),
    skipped: branch("skip"),
    xBlock: input("x_block", maxRows * H),
    rowsBlock: storageBuffer(device, "rows_kept", maxRows * 8),
    q: f32("q", maxRows * qDim),
  };
}
