/**
 * One model's row of `deno task bench` (the child process's work): load it as `flexidepth run` would, warm
 * it up, then time the bandwidth probes, prefill, decode by window and by context length, count the GPU
 * objects a decode creates, and measure routing, DMTD's cycles and the per-kernel profile where they apply.
 */

import { describeAdapter, openGpu } from "../src/gpu/device.ts";
import { wantsInlineDispatch } from "../src/gpu/profile.ts";
import { Model } from "../src/generation/model.ts";
import type { GenerateOptions } from "../src/generation/generate.ts";
import { type Checkpoint, openCheckpoint } from "../src/model/checkpoint.ts";
import { SHAPES } from "../src/model/demo_config.ts";
import { syntheticCheckpoint } from "../src/model/synthetic.ts";
import { weightBytesPerToken } from "../src/graph/traffic.ts";
import { measureDmtd } from "./dmtd.ts";
import { countAllocations } from "./allocations.ts";
import { copyBandwidth, fastestOf, readBandwidth } from "./bandwidth.ts";
import { type Profile, profileDecode } from "./profile_decode.ts";
import { type BenchModel, type BenchOptions, SHAPE_PREFIX, tokensFor } from "./bench_options.ts";
import type { Row } from "./bench_results.ts";
import { keepRates, measureRouting } from "./bench_routing.ts";

/** A row, the adapter that ran it, and the token count of its allocation check. */
export interface Measured {
  row: Row;
  adapter: string;
  allocationTokens: number;
}

/** The model's checkpoint (or random weights of a `shape:NAME`) on the GPU; with timestamps for --profile. */
async function loadModel(m: BenchModel, opts: BenchOptions): Promise<Model> {
  const { flags, features, quant, kvCache } = opts;
  const storage = flags.storage as "buffer" | "texture" | undefined;
  const backend = storage ? { weightStorage: storage } : undefined;
  const loadOpts = { features, progress: false, maxRows: 128, backend, quant, kvCache };
  const synthetic = m.dir.startsWith(SHAPE_PREFIX);
  const ck: Checkpoint = synthetic
    ? await syntheticCheckpoint(await Deno.makeTempDir(), SHAPES[m.dir.slice(SHAPE_PREFIX.length)])
    : await openCheckpoint(m.dir);
  // --profile opens the device with timestamp queries; the profiler is attached only for its own decode.
  const gpu = flags.profile
    ? await openGpu({ features, profile: true, smallDispatches: wantsInlineDispatch(ck) })
    : undefined;
  return await Model.fromCheckpoint(ck, { ...loadOpts, gpu, progress: synthetic });
}

/** `n` prompt ids spread over the vocabulary. */
const promptIds = (n: number, vocab: number) =>
  Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % (vocab - 1)));

/** The fastest of `repeat` generations from `ids`, by decode speed. */
const fastestDecode = (model: Model, ids: number[], options: GenerateOptions, repeat: number) =>
  fastestOf(
    repeat,
    () => model.generate({ ids }, options).collect(),
    (r) => 1 / r.summary.decodeTokensPerSec,
  );

/** The row's first figures: the bandwidth probes and prefill (none for a decode-only row); no decode yet. */
async function firstFigures(model: Model, m: BenchModel, opts: BenchOptions, prompt: number[]): Promise<Row> {
  const { repeat, quant } = opts;
  const device = model.engine.gpu.device;
  const software = model.engine.backend.family === "software";
  const copyGbs = await copyBandwidth(device, software, repeat);
  const weightStorage = model.engine.weights.layers[0].qkv.storage;
  const readGbs = await readBandwidth(device, software, weightStorage, repeat);

  const pre = m.decodeOnly ? null : await fastestOf(
    repeat,
    () => model.generate({ ids: prompt }, { maxTokens: 1, window: 1 }).collect(),
    (r) => 1 / r.summary.prefillTokensPerSec,
  );
  return {
    model: m.name,
    quant: quant ?? "none",
    kv_cache: model.engine.kv.dtype,
    weight_bytes: model.engine.weights.bytes,
    copy_gb_per_s: copyGbs,
    read_gb_per_s: readGbs,
    read_probe: weightStorage,
    decode_only: m.decodeOnly,
    prefill_tokens: pre ? prompt.length : 0,
    prefill_tokens_per_s: pre?.summary.prefillTokensPerSec ?? null,
    decode: [],
    context: [],
    allocations_500_tokens: null,
  };
}

/** Decode after a one-token prompt with one step in flight (window 1) and with the automatic window. */
async function decodeByWindow(
  model: Model,
  first: number,
  tokens: number,
  repeat: number,
): Promise<Row["decode"]> {
  const decode: Row["decode"] = [];
  for (const window of [1, "auto"] as const) {
    // A random model may emit an end-of-sequence id: ignore it so every run decodes the same count.
    const r = await fastestDecode(model, [first], { maxTokens: tokens, window, ignoreEos: true }, repeat);
    const s = r.summary;
    decode.push({
      window: String(window),
      depth_used: s.windowDepth,
      tokens: s.generatedTokens,
      tokens_per_s: s.decodeTokensPerSec,
      ms_per_token: 1000 / s.decodeTokensPerSec,
      readback_wait_ms: s.readbackWaitMs,
    });
  }
  return decode;
}

/**
 * Decode speed at two context lengths (decode only: after one token), and the weight bandwidth it implies
 * (routing as the model decides), against the row's copy and read bandwidths.
 */
async function decodeByContext(
  model: Model,
  row: Row,
  tokens: number,
  repeat: number,
): Promise<Row["context"]> {
  const context: Row["context"] = [];
  const ctxMax = model.engine.context - tokens - 1;
  for (const want of row.decode_only ? [1] : [128, 2048]) {
    const n = Math.min(want, ctxMax);
    if (context.some((c) => c.prompt_tokens === n)) continue;
    const long = promptIds(n, model.engine.config.vocabSize);
    const r = await fastestDecode(model, long, { maxTokens: tokens, ignoreEos: true }, repeat);
    const bytes = weightBytesPerToken(
      model.engine.weights,
      keepRates(r.tokens, model.engine.config.routingLayers.length),
    );
    const gbs = bytes * r.summary.decodeTokensPerSec / 1e9;
    context.push({
      prompt_tokens: n,
      tokens_per_s: r.summary.decodeTokensPerSec,
      ms_per_token: 1000 / r.summary.decodeTokensPerSec,
      weight_bytes_per_token: bytes,
      weight_gb_per_s: gbs,
      fraction_of_copy: gbs / row.copy_gb_per_s,
      fraction_of_read: gbs / row.read_gb_per_s,
    });
  }
  return context;
}

/** No per-token allocation: nothing is created during a `tokens`-token decode once a first one has run. */
async function decodeAllocations(
  model: Model,
  first: number,
  tokens: number,
): Promise<Row["allocations_500_tokens"]> {
  const long = { maxTokens: tokens, ignoreEos: true };
  await model.generate({ ids: [first] }, long).collect();
  return await countAllocations(
    model.engine.gpu.device,
    () => model.generate({ ids: [first] }, long).collect(),
  );
}

/** --profile: per-kernel GPU time of a decode, with routing and (routed models) at full depth. */
async function profiles(model: Model, first: number, decodeTokens: number): Promise<Profile[]> {
  const profile: Profile[] = [];
  for (const fullDepth of model.engine.config.routingLayers.length ? [false, true] : [false]) {
    profile.push(await profileDecode(model, first, Math.min(32, decodeTokens), fullDepth));
  }
  return profile;
}

/** Loads one model, says which adapter runs it, and measures its row. */
export async function measureModel(m: BenchModel, opts: BenchOptions): Promise<Measured> {
  const { repeat } = opts;
  const decodeTokens = tokensFor(opts.flags, m.decodeOnly);
  const model = await loadModel(m, opts);
  const adapter = describeAdapter(model.engine.gpu);
  console.log(`adapter: ${adapter}${model.engine.backend.inlineDispatch ? " (dispatches inline)" : ""}`);
  const prompt = promptIds(128, model.engine.config.vocabSize);
  // Warm-up: compiles every pipeline (decode only: those of one-row steps).
  await model.generate({ ids: prompt.slice(0, m.decodeOnly ? 1 : 8) }, { maxTokens: 4, window: 1 }).collect();

  const row = await firstFigures(model, m, opts, prompt);
  if (!m.decodeOnly) row.decode = await decodeByWindow(model, prompt[0], decodeTokens, repeat);
  row.context = await decodeByContext(model, row, decodeTokens, repeat);
  const allocationTokens = Math.min(500, model.engine.context - 2);
  if (!m.decodeOnly) row.allocations_500_tokens = await decodeAllocations(model, prompt[0], allocationTokens);

  const cfg = model.engine.config;
  const head = prompt.slice(0, m.decodeOnly ? 1 : 16);
  if (cfg.routingLayers.length) row.routing = await measureRouting(model, head, decodeTokens, repeat);
  if (cfg.dmtd) row.dmtd = await measureDmtd(model, head, decodeTokens, repeat);
  if (opts.flags.profile) row.profile = await profiles(model, prompt[0], decodeTokens);
  return { row, adapter, allocationTokens };
}
