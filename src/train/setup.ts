/**
 * Everything a training run starts from, in one place: the base (or a pretrain's shape and tokenizer), the
 * training shape of the stage, the data, the GPU, the parameters (a resumed run's from its state file), the
 * training graph and the optimizer. The loop (./trainer.ts) only steps through what this builds.
 */

import { join } from "node:path";
import { type Checkpoint, openCheckpoint } from "../model/checkpoint.ts";
import type { ModelConfig } from "../model/config.ts";
import { type GpuContext, openGpu } from "../gpu/device.ts";
import { KernelCache } from "../gpu/kernels.ts";
import { backendProfile } from "../gpu/profile.ts";
import { bufferFrom } from "../gpu/buffers.ts";
import { TrainAttention } from "../ops/attention/train.ts";
import { ropeTable } from "../ops/rope/table.ts";
import { TextTokenizer } from "../tokenizer/tokenizer.ts";
import { type DataPosition, openTrainingData, type TrainingData } from "./data/mod.ts";
import { TrainError } from "./errors.ts";
import { TrainContext } from "./model/context.ts";
import { TrainModel } from "./model/model.ts";
import { paramSpecs, type Stage } from "./model/params.ts";
import { baseShape, pretrainShape } from "./shapes.ts";
import { type TrainShape, trainShape } from "./model/shape.ts";
import { Optimizer } from "./optimizer.ts";
import { ParamStore } from "./params.ts";
import { loadState, readRunState, type RunState } from "./state.ts";

export interface TrainOptions {
  stage: Stage;
  /** The base model folder (flexidepth, dmtd; pretrain: continue pretraining it). */
  model: string | null;
  /** pretrain: a preset name or a config.json path, and the model folder whose tokenizer to use. */
  shape: string | null;
  tokenizer: string | null;
  data: string[];
  out: string;
  steps: number;
  batch: number;
  seq: number;
  /** Micro-batches per optimizer step. */
  accumulate: number;
  lr: number;
  minLr: number;
  warmup: number;
  weightDecay: number;
  clip: number;
  alpha: number;
  /** Routed layers (null: the base's, else the later half). */
  layers: number[] | null;
  /** DMTD cycle τ and decoding layers (null: the base's, else 4 and about 8 of 36). */
  cycle: number | null;
  decodingLayers: number | null;
  seed: number;
  evalEvery: number;
  saveEvery: number;
  /** Validation batches per measurement; held-out documents (fraction or count). */
  valBatches: number;
  heldOut: number;
  docSep?: string;
}

export interface TrainSetup {
  opts: TrainOptions;
  shape: TrainShape;
  base: Checkpoint | null;
  tokenizerDir: string;
  tokenizer: TextTokenizer;
  data: TrainingData;
  gpu: GpuContext;
  store: ParamStore;
  ctx: TrainContext;
  model: TrainModel;
  optimizer: Optimizer;
  /** The state a resumed run continues from (null: a new run). */
  resumed: RunState | null;
}

/** The settings that decide a run's curve: a resume must be given the same. */
export function runSettings(o: TrainOptions): Record<string, unknown> {
  const { out: _out, evalEvery: _e, saveEvery: _s, ...rest } = o;
  return rest;
}

async function checkResume(o: TrainOptions): Promise<RunState | null> {
  const state = await readRunState(o.out);
  if (!state) return null;
  const want = JSON.stringify(runSettings(o)), had = JSON.stringify(state.settings);
  if (want !== had) {
    throw new TrainError(
      `${o.out} holds a run started with other settings (${diffKeys(state.settings, runSettings(o))})`,
      "run the same command to resume it, or pass another -o folder",
    );
  }
  return state;
}

function diffKeys(a: Record<string, unknown>, b: Record<string, unknown>): string {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).join(", ") || "order";
}

async function loadTokenizer(ck: Checkpoint): Promise<TextTokenizer> {
  return await TextTokenizer.load(ck.tokenizerJsonPath, ck.tokenizerConfig, {
    bosTokenId: ck.config.bosTokenId,
    eosTokenIds: ck.eosTokenIds,
  });
}

/** The base (or the tokenizer's model) and the shape the stage trains. */
async function openModel(o: TrainOptions) {
  if (o.stage === "pretrain" && o.model) return await continuedPretrain(o, o.model);
  if (o.stage === "pretrain") {
    if (!o.tokenizer) throw new TrainError("pretrain needs a tokenizer", "pass --tokenizer MODEL_DIR");
    const tokCk = await openCheckpoint(o.tokenizer);
    const tokenizer = await loadTokenizer(tokCk);
    const shape = await pretrainShape(o.shape ?? "stories260K", tokenizer, o.seq);
    return { base: null, tokenizer, tokenizerDir: o.tokenizer, shape };
  }
  if (!o.model) throw new TrainError(`the ${o.stage} stage trains a base model`, "pass --model DIR");
  const base = await openCheckpoint(o.model);
  return {
    base,
    tokenizer: await loadTokenizer(base),
    tokenizerDir: o.model,
    shape: baseShape(o, base.config),
  };
}

/** Pretraining that starts from a model's weights: its shape and tokenizer, every weight trained. */
async function continuedPretrain(o: TrainOptions, dir: string) {
  if (o.shape || o.tokenizer) {
    throw new TrainError(
      "--model sets the shape and tokenizer of a continued pretrain",
      "pass --model DIR alone, or --shape and --tokenizer for a new model",
    );
  }
  const base = await openCheckpoint(dir);
  if (base.config.routingLayers.length || base.config.dmtd) {
    throw new TrainError(
      `${dir} is a FlexiDepth or DMTD model: pretraining continues a plain one`,
      "pass --model the base it was trained from",
    );
  }
  return { base, tokenizer: await loadTokenizer(base), tokenizerDir: dir, shape: trainShape(base.config) };
}

/** The training attention's longest window at the model's head size (llvmpipe's loop limit sets it). */
function checkSeq(seq: number, headDim: number): void {
  const max = TrainAttention.maxSeqLen(headDim);
  if (seq > max) {
    throw new TrainError(
      `--seq ${seq} is longer than training attention takes at head size ${headDim} (${max} positions)`,
      `pass --seq ${max} or less`,
    );
  }
}

/** Opens the GPU with inline dispatches when every matrix is small (see `wantsInlineDispatch`). */
function smallModel(cfg: ModelConfig): boolean {
  return cfg.hiddenSize * Math.max(cfg.intermediateSize, cfg.vocabSize) * 4 < (1 << 20);
}

export async function setupTraining(o: TrainOptions, gpuIn?: GpuContext): Promise<TrainSetup> {
  const resumed = await checkResume(o);
  const { base, tokenizer, tokenizerDir, shape } = await openModel(o);
  checkSeq(o.seq, shape.headDim);
  await Deno.mkdir(o.out, { recursive: true });
  const data = await openTrainingData({
    sources: o.data,
    tokenizer,
    seq: o.seq,
    seed: o.seed,
    heldOut: o.heldOut,
    docSep: o.docSep,
    cacheDir: join(o.out, "cache"),
  });
  const gpu = gpuIn ?? await openGpu({ smallDispatches: smallModel(shape.cfg) });
  const kernels = new KernelCache(gpu);
  const profile = backendProfile(gpu, shape.cfg);
  const store = new ParamStore(gpu.device);
  for (const spec of await paramSpecs(o.stage, shape, base, o.seed)) store.add(spec);
  if (resumed) {
    await loadState(o.out, store);
    data.restore(resumed.data as DataPosition);
  }
  const cosSin = bufferFrom(gpu.device, "rope table", ropeTable(shape.cfg, o.seq));
  const ctx = new TrainContext(kernels, profile, shape, store, { batch: o.batch, seq: o.seq }, cosSin);
  const model = new TrainModel(ctx, o.alpha / o.accumulate);
  const optimizer = new Optimizer(kernels, store, {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: o.weightDecay,
    clip: o.clip,
  });
  return { opts: o, shape, base, tokenizerDir, tokenizer, data, gpu, store, ctx, model, optimizer, resumed };
}
