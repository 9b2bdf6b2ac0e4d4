/**
 * `deno task bench`: speed on the adapter this machine has. For each model: prefill tokens/s, decode
 * tokens/s and ms/token with one step in flight (window 1) and with the automatic window.
 * Prints a table and writes the figures as JSON (bench-results.json, or --out FILE) for comparison.
 * Each model runs in its own process, as `flexidepth run` would load it: the GPU set-up may depend on the
 * model (a small model's dispatches run inline on a CPU software GPU). `--shape llama3-8b` benchmarks random
 * weights of that shape (BF16, FlexiDepth routers on layers 16–31) without a checkpoint. `--quant q8|q4`
 * quantizes the projections at load, as `flexidepth run --quant` does; `--kv-cache f16|f32` picks the KV cache
 * type (each row reports the one that ran; bench/kv_cache.ts compares the two at long context).
 */

import { parseArgs } from "node:util";
import { describeAdapter, type FeatureMode, openGpu } from "../src/gpu/device.ts";
import { wantsInlineDispatch } from "../src/gpu/profile.ts";
import { Model } from "../src/generation/model.ts";
import { type Checkpoint, openCheckpoint } from "../src/model/checkpoint.ts";
import { ensureDefaultDemoModel } from "../src/model/demo.ts";
import { SHAPES } from "../src/model/demo_config.ts";
import { syntheticCheckpoint } from "../src/model/synthetic.ts";
import { weightBytesPerToken } from "../src/graph/traffic.ts";
import { type DmtdRow, measureDmtd, printDmtd } from "./dmtd.ts";
import { countAllocations } from "./allocations.ts";
import { copyBandwidth, fastestOf, readBandwidth } from "./bandwidth.ts";
import { type Profile, profileDecode } from "./profile_decode.ts";
import type { TokenEvent } from "../src/generation/generate.ts";
import { isQuantFormat, QUANT_FORMATS, type QuantFormat } from "../src/model/quant.ts";
import type { KvDtype } from "../src/gpu/profile.ts";
import { kvCacheFlag } from "../src/cli/generate_flags.ts";

if (Deno.args.includes("--train")) {
  // Training speed: its own table (bench/train.ts).
  const { trainBenchMain } = await import("./train.ts");
  await trainBenchMain(Deno.args.filter((a) => a !== "--train"));
  Deno.exit(0);
}

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", multiple: true },
    out: { type: "string" },
    tokens: { type: "string" },
    repeat: { type: "string" },
    storage: { type: "string" },
    quant: { type: "string" },
    "kv-cache": { type: "string" },
    child: { type: "boolean" },
    name: { type: "string" },
    shape: { type: "string" },
    "plain-kernels": { type: "boolean" },
    "decode-only": { type: "boolean" },
    profile: { type: "boolean" },
  },
});

const STORIES = new URL("../../shared/models/stories260K", import.meta.url).pathname;
/** Tokens per timed decode: 128 (decode-only rows: 32, a large model's token takes long on a CPU). */
const tokensFor = (decodeOnly: boolean) => Number(flags.tokens ?? (decodeOnly ? 32 : 128));
/** Every timed run is repeated and the fastest kept: a shared or virtual machine adds noise, never speed. */
const repeat = Math.max(1, Number(flags.repeat ?? 3));

/** The fastest of `repeat` runs, by the given time. */
const best = <T>(run: () => Promise<T>, time: (r: T) => number) => fastestOf(repeat, run, time);
const features: FeatureMode = flags["plain-kernels"] ? "none" : "auto";
let quant: QuantFormat | null = null;
if (flags.quant !== undefined && flags.quant !== "none") {
  if (!isQuantFormat(flags.quant)) {
    console.error(`error: unknown --quant ${flags.quant} — use none, ${QUANT_FORMATS.join(" or ")}`);
    Deno.exit(2);
  }
  quant = flags.quant;
}

let kvCache: KvDtype | undefined;
try {
  kvCache = kvCacheFlag(flags["kv-cache"]);
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(2);
}

const FLEXI = new URL("../../shared/models/stories260K-flexidepth", import.meta.url).pathname;
/** A synthetic shape travels to the child as the model "directory" `shape:NAME`. */
const SHAPE_PREFIX = "shape:";
if (flags.shape !== undefined && !SHAPES[flags.shape]) {
  console.error(`error: unknown --shape ${flags.shape} — use one of ${Object.keys(SHAPES).join(", ")}`);
  Deno.exit(2);
}
/**
 * A decode-only row (`--decode-only`, and the default list's last model) skips what a large model makes slow on
 * a CPU software GPU — any prompt longer than one token, the decodes by window, the 500-token allocation count —
 * and keeps the decode figures after a one-token prompt: weight bandwidth and routing against full depth.
 */
const decodeOnly = !!flags["decode-only"];
const models: { name: string; dir: string; decodeOnly: boolean }[] = flags.shape
  ? [{ name: `${flags.shape} shape (random weights)`, dir: SHAPE_PREFIX + flags.shape, decodeOnly }]
  : flags.model?.map((dir) => ({ name: flags.name ?? dir, dir, decodeOnly })) ?? [
    { name: "stories260K", dir: STORIES, decodeOnly },
    { name: "stories260K-flexidepth", dir: FLEXI, decodeOnly },
    { name: "demo (default, random weights)", dir: await ensureDefaultDemoModel(), decodeOnly },
    // Decode bound by the weights even on a CPU software GPU, where the small models above are bound by the
    // fixed cost of each dispatch: the bandwidth figure that the kernels, not the dispatches, decide.
    { name: "llama3-1b shape (random weights)", dir: SHAPE_PREFIX + "llama3-1b", decodeOnly: true },
    // DMTD's cycle on a Qwen3 of 16 layers (12 thinking, 4 decoding) bound by its weights on a CPU software GPU.
    { name: "dmtd-small shape (random weights)", dir: SHAPE_PREFIX + "dmtd-small", decodeOnly: true },
  ];

if (!flags.child) {
  // Parent: one child process per model, then one JSON file with every row.
  const rowsAll: unknown[] = [];
  let adapterAll = "";
  for (const m of models) {
    const tmp = await Deno.makeTempFile({ suffix: ".json" });
    const args = [
      "run",
      "--allow-all",
      new URL(import.meta.url).pathname,
      "--child",
      "--model",
      m.dir,
      "--name",
      m.name,
      "--out",
      tmp,
    ];
    for (const k of ["tokens", "repeat", "storage", "quant", "kv-cache"] as const) {
      if (flags[k]) args.push(`--${k}`, flags[k]!);
    }
    if (flags["plain-kernels"]) args.push("--plain-kernels");
    if (flags.profile) args.push("--profile");
    if (m.decodeOnly) args.push("--decode-only");
    const { success } = await new Deno.Command(Deno.execPath(), {
      args,
      stdout: "inherit",
      stderr: "inherit",
    })
      .output();
    if (!success) Deno.exit(1);
    const r = JSON.parse(await Deno.readTextFile(tmp));
    await Deno.remove(tmp);
    adapterAll = r.adapter;
    for (const row of r.rows) rowsAll.push({ ...row, model: m.name });
  }
  const out = flags.out ?? "bench-results.json";
  await Deno.writeTextFile(
    out,
    JSON.stringify({ date: new Date().toISOString(), adapter: adapterAll, rows: rowsAll }, null, 2) + "\n",
  );
  console.log(`\nwrote ${out}`);
  Deno.exit(0);
}

/** Fraction of tokens that ran each routed layer. */
function keepRates(tokens: TokenEvent[], routed: number): number[] {
  return Array.from(
    { length: routed },
    (_, k) => tokens.filter((t) => t.routes[k]).length / Math.max(1, tokens.length),
  );
}

interface Routing {
  mean_layers: number;
  of_layers: number;
  routed_ms_per_token: number;
  full_depth_ms_per_token: number;
  measured_speedup: number;
  ideal_speedup: number;
  measured_over_ideal: number;
  bytes_per_token_routed: number;
  bytes_per_token_full: number;
}

interface Row {
  model: string;
  /** Projections quantized at load ("none", "q8", "q4"). */
  quant: string;
  /** The KV cache's element type that ran (`--kv-cache`, else the backend profile's). */
  kv_cache: KvDtype;
  /** Bytes of weights on the GPU. */
  weight_bytes: number;
  routing?: Routing;
  /** DMTD models: decode at full depth and at each cycle τ. */
  dmtd?: DmtdRow;
  /** --profile: GPU time per decode step by kernel and matrix (layers folded together), with routing and not. */
  profile?: Profile[];
  /** Buffer-to-buffer copy on the same device: (bytes read + bytes written) / s. */
  copy_gb_per_s: number;
  /** A compute kernel streaming the weights' storage (read_probe: a buffer or texture rows): bytes read / s. */
  read_gb_per_s: number;
  read_probe: "buffer" | "texture";
  /**
   * Decode only (--decode-only): no prefill figures, no `decode` rows by window (its one context row, after a
   * one-token prompt, is the automatic window's decode), no allocation count.
   */
  decode_only: boolean;
  prefill_tokens: number;
  prefill_tokens_per_s: number | null;
  /**
   * Decode after a prompt of 128 and of 2048 tokens (or the most the model's context allows); decode only: 1.
   */
  context: {
    prompt_tokens: number;
    tokens_per_s: number;
    ms_per_token: number;
    weight_bytes_per_token: number;
    weight_gb_per_s: number;
    fraction_of_copy: number;
    fraction_of_read: number;
  }[];
  /** GPU objects created during a warmed-up 500-token decode (a per-token allocation shows up here). */
  allocations_500_tokens: {
    buffers: number;
    buffer_bytes: number;
    textures: number;
    bind_groups: number;
  } | null;
  decode: {
    window: string;
    depth_used: number;
    tokens: number;
    tokens_per_s: number;
    ms_per_token: number;
    readback_wait_ms: number;
  }[];
}
const rows: Row[] = [];
let adapter = "";

for (const m of models) {
  const storage = flags.storage as "buffer" | "texture" | undefined;
  const backend = storage ? { weightStorage: storage } : undefined;
  const loadOpts = { features, progress: false, maxRows: 128, backend, quant, kvCache };
  const decodeTokens = tokensFor(m.decodeOnly);
  const synthetic = m.dir.startsWith(SHAPE_PREFIX);
  const ck: Checkpoint = synthetic
    ? await syntheticCheckpoint(await Deno.makeTempDir(), SHAPES[m.dir.slice(SHAPE_PREFIX.length)])
    : await openCheckpoint(m.dir);
  // --profile opens the device with timestamp queries; the profiler is attached only for its own decode.
  const gpu = flags.profile
    ? await openGpu({ features, profile: true, smallDispatches: wantsInlineDispatch(ck) })
    : undefined;
  const model = await Model.fromCheckpoint(ck, { ...loadOpts, gpu, progress: synthetic });
  adapter = describeAdapter(model.engine.gpu);
  console.log(`adapter: ${adapter}${model.engine.backend.inlineDispatch ? " (dispatches inline)" : ""}`);
  const vocab = model.engine.config.vocabSize;
  const prompt = Array.from({ length: 128 }, (_, i) => 1 + ((i * 7919) % (vocab - 1)));
  // Warm-up: compiles every pipeline (decode only: those of one-row steps).
  await model.generate({ ids: prompt.slice(0, m.decodeOnly ? 1 : 8) }, { maxTokens: 4, window: 1 }).collect();

  const device = model.engine.gpu.device;
  const software = model.engine.backend.family === "software";
  const copyGbs = await copyBandwidth(device, software, repeat);
  const weightStorage = model.engine.weights.layers[0].qkv.storage;
  const readGbs = await readBandwidth(device, software, weightStorage, repeat);

  const pre = m.decodeOnly ? null : await best(
    () => model.generate({ ids: prompt }, { maxTokens: 1, window: 1 }).collect(),
    (r) => 1 / r.summary.prefillTokensPerSec,
  );
  const row: Row = {
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
  for (const window of m.decodeOnly ? [] : [1, "auto"] as const) {
    // A random model may emit an end-of-sequence id: ignore it so every run decodes the same count.
    const r = await best(
      () =>
        model.generate({ ids: [prompt[0]] }, { maxTokens: decodeTokens, window, ignoreEos: true }).collect(),
      (r) => 1 / r.summary.decodeTokensPerSec,
    );
    const s = r.summary;
    row.decode.push({
      window: String(window),
      depth_used: s.windowDepth,
      tokens: s.generatedTokens,
      tokens_per_s: s.decodeTokensPerSec,
      ms_per_token: 1000 / s.decodeTokensPerSec,
      readback_wait_ms: s.readbackWaitMs,
    });
  }
  // Decode speed at two context lengths, and the weight bandwidth it implies (routing as the model decides).
  const ctxMax = model.engine.context - decodeTokens - 1;
  for (const want of m.decodeOnly ? [1] : [128, 2048]) {
    const n = Math.min(want, ctxMax);
    if (row.context.some((c) => c.prompt_tokens === n)) continue;
    const long = Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % (vocab - 1)));
    const r = await best(
      () => model.generate({ ids: long }, { maxTokens: decodeTokens, ignoreEos: true }).collect(),
      (r) => 1 / r.summary.decodeTokensPerSec,
    );
    const bytes = weightBytesPerToken(
      model.engine.weights,
      keepRates(r.tokens, model.engine.config.routingLayers.length),
    );
    const gbs = bytes * r.summary.decodeTokensPerSec / 1e9;
    row.context.push({
      prompt_tokens: n,
      tokens_per_s: r.summary.decodeTokensPerSec,
      ms_per_token: 1000 / r.summary.decodeTokensPerSec,
      weight_bytes_per_token: bytes,
      weight_gb_per_s: gbs,
      fraction_of_copy: gbs / copyGbs,
      fraction_of_read: gbs / readGbs,
    });
  }
  // No per-token allocation: nothing is created during a 500-token decode once a first one has run.
  const long500 = { maxTokens: Math.min(500, model.engine.context - 2), ignoreEos: true };
  if (!m.decodeOnly) {
    await model.generate({ ids: [prompt[0]] }, long500).collect();
    row.allocations_500_tokens = await countAllocations(
      device,
      () => model.generate({ ids: [prompt[0]] }, long500).collect(),
    );
  }

  const cfg = model.engine.config;
  if (cfg.routingLayers.length) {
    // Same prompt and token count with routing and at full depth (the base model), automatic window; the
    // two alternate, so that a slow spell of a shared machine falls on both.
    const decode = (fullDepth: boolean) =>
      model.generate({ ids: prompt.slice(0, m.decodeOnly ? 1 : 16) }, {
        maxTokens: decodeTokens,
        fullDepth,
        ignoreEos: true,
      })
        .collect();
    type Run = Awaited<ReturnType<typeof decode>>;
    const fastest: [Run | null, Run | null] = [null, null];
    for (let i = 0; i < repeat; i++) {
      for (const fullDepth of [false, true]) {
        const r = await decode(fullDepth), k = Number(fullDepth);
        if (!fastest[k] || r.summary.decodeTokensPerSec > fastest[k]!.summary.decodeTokensPerSec) {
          fastest[k] = r;
        }
      }
    }
    const timed = (r: Run) => ({
      ms: 1000 / r.summary.decodeTokensPerSec,
      tokens: r.tokens,
      mean: r.summary.meanLayers,
    });
    const routedRun = timed(fastest[0]!), full = timed(fastest[1]!);
    const w = model.engine.weights;
    const bytesRouted = weightBytesPerToken(w, keepRates(routedRun.tokens, cfg.routingLayers.length));
    const bytesFull = weightBytesPerToken(w, [], true);
    const measured = full.ms / routedRun.ms, ideal = bytesFull / bytesRouted;
    row.routing = {
      mean_layers: routedRun.mean,
      of_layers: cfg.numLayers,
      routed_ms_per_token: routedRun.ms,
      full_depth_ms_per_token: full.ms,
      measured_speedup: measured,
      ideal_speedup: ideal,
      measured_over_ideal: measured / ideal,
      bytes_per_token_routed: bytesRouted,
      bytes_per_token_full: bytesFull,
    };
  }
  if (cfg.dmtd) {
    row.dmtd = await measureDmtd(model, prompt.slice(0, m.decodeOnly ? 1 : 16), decodeTokens, repeat);
  }
  if (flags.profile) {
    row.profile = [];
    for (const fullDepth of cfg.routingLayers.length ? [false, true] : [false]) {
      row.profile.push(await profileDecode(model, prompt[0], Math.min(32, decodeTokens), fullDepth));
    }
  }
  rows.push(row);
  console.log(`\n${m.name}`);
  console.log(
    `  weights on the GPU: ${(row.weight_bytes / 2 ** 20).toFixed(1)} MiB${
      quant ? ` (projections ${quant})` : ""
    }; KV cache ${row.kv_cache}`,
  );
  if (row.prefill_tokens_per_s !== null) {
    console.log(`  prefill ${prompt.length} tokens: ${row.prefill_tokens_per_s.toFixed(1)} tokens/s`);
  } else console.log("  decode only (--decode-only)");
  for (const d of row.decode) {
    console.log(
      `  decode window ${d.window.padEnd(4)} (depth ${String(d.depth_used).padStart(2)}): ` +
        `${d.tokens_per_s.toFixed(1).padStart(7)} tokens/s  ${
          d.ms_per_token.toFixed(2).padStart(7)
        } ms/token`,
    );
  }
  for (const c of row.context) {
    console.log(
      `  decode after ${String(c.prompt_tokens).padStart(4)} prompt tokens: ${
        c.tokens_per_s.toFixed(1).padStart(7)
      } tokens/s  ${c.ms_per_token.toFixed(2).padStart(7)} ms/token; weights ${
        c.weight_gb_per_s.toFixed(3)
      } GB/s = ${(100 * c.fraction_of_copy).toFixed(1)}% of copy bandwidth (${copyGbs.toFixed(2)} GB/s), ${
        (100 * c.fraction_of_read).toFixed(1)
      }% of ${weightStorage} read bandwidth (${readGbs.toFixed(2)} GB/s)`,
    );
  }
  const a = row.allocations_500_tokens;
  if (a) {
    console.log(
      `  GPU objects created during ${long500.maxTokens} decode tokens: ${a.buffers} buffers (${a.buffer_bytes} B), ` +
        `${a.textures} textures, ${a.bind_groups} bind groups`,
    );
  }
  const r = row.routing;
  if (r) {
    console.log(
      `  routing: ${r.routed_ms_per_token.toFixed(2)} ms/token at ${
        r.mean_layers.toFixed(2)
      } of ${r.of_layers} layers; ` +
        `full depth ${r.full_depth_ms_per_token.toFixed(2)} ms/token`,
    );
    console.log(
      `  speed-up ${r.measured_speedup.toFixed(3)}× measured, ${
        r.ideal_speedup.toFixed(3)
      }× ideal from weight bytes ` +
        `(${(r.bytes_per_token_routed / 2 ** 20).toFixed(3)} vs ${
          (r.bytes_per_token_full / 2 ** 20).toFixed(3)
        } ` +
        `MiB/token): measured ÷ ideal = ${r.measured_over_ideal.toFixed(2)}`,
    );
  }
  if (row.dmtd) printDmtd(row.dmtd);
  for (const p of row.profile ?? []) {
    console.log(
      `  profile${p.full_depth ? " (full depth)" : ""}, ${p.steps} steps at window 1: GPU ${
        p.gpu_ms_per_step.toFixed(3)
      } ms/step of ${p.wall_ms_per_step.toFixed(3)} ms wall (every dispatch timed on its own)`,
    );
    for (const k of p.kernels.slice(0, 24)) {
      console.log(
        `    ${k.kernel.padEnd(48)} ${k.calls_per_step.toFixed(1).padStart(6)} calls ${
          k.ms_per_step.toFixed(3).padStart(8)
        } ms/step`,
      );
    }
  }
}

const out = flags.out ?? "bench-results.json";
await Deno.writeTextFile(
  out,
  JSON.stringify({ date: new Date().toISOString(), adapter, rows }, null, 2) + "\n",
);
