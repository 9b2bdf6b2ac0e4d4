/**
 * `deno task bench`'s flags, checked (a bad --quant, --kv-cache or --shape exits 2 with one line), and the
 * models it runs: --shape, --model or the default list.
 */

import { parseArgs } from "node:util";
import type { FeatureMode } from "../src/gpu/device.ts";
import type { KvDtype } from "../src/gpu/profile.ts";
import { ensureDefaultDemoModel } from "../src/model/demo.ts";
import { SHAPES } from "../src/model/demo_config.ts";
import { isQuantFormat, QUANT_FORMATS, type QuantFormat } from "../src/model/quant.ts";
import { kvCacheFlag } from "../src/cli/generate_flags.ts";

function parseFlags(args: string[]) {
  return parseArgs({
    args,
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
  }).values;
}

export type BenchFlags = ReturnType<typeof parseFlags>;

/** A model to benchmark: its row's name, its folder (or `shape:NAME`), and whether its row is decode only. */
export interface BenchModel {
  name: string;
  dir: string;
  decodeOnly: boolean;
}

export interface BenchOptions {
  flags: BenchFlags;
  /** Every timed run is repeated and the fastest kept: a shared or virtual machine adds noise, never speed. */
  repeat: number;
  features: FeatureMode;
  quant: QuantFormat | null;
  kvCache: KvDtype | undefined;
  models: BenchModel[];
}

const STORIES = new URL("../../shared/models/stories260K", import.meta.url).pathname;
const FLEXI = new URL("../../shared/models/stories260K-flexidepth", import.meta.url).pathname;
/** A synthetic shape travels to the child as the model "directory" `shape:NAME`. */
export const SHAPE_PREFIX = "shape:";

/** Tokens per timed decode: 128 (decode-only rows: 32, a large model's token takes long on a CPU). */
export const tokensFor = (flags: BenchFlags, decodeOnly: boolean) =>
  Number(flags.tokens ?? (decodeOnly ? 32 : 128));

/** Prints `error: MESSAGE` and exits 2. */
function usageError(message: string): never {
  console.error(`error: ${message}`);
  Deno.exit(2);
}

function quantFlag(flags: BenchFlags): QuantFormat | null {
  if (flags.quant === undefined || flags.quant === "none") return null;
  if (!isQuantFormat(flags.quant)) {
    usageError(`unknown --quant ${flags.quant} — use none, ${QUANT_FORMATS.join(" or ")}`);
  }
  return flags.quant;
}

function kvCacheOption(flags: BenchFlags): KvDtype | undefined {
  try {
    return kvCacheFlag(flags["kv-cache"]);
  } catch (e) {
    usageError((e as Error).message);
  }
}

/**
 * The models to run. A decode-only row (`--decode-only`, and the default list's last models) skips what a
 * large model makes slow on a CPU software GPU — any prompt longer than one token, the decodes by window,
 * the 500-token allocation count — and keeps the decode figures after a one-token prompt: weight bandwidth
 * and routing against full depth.
 */
async function benchModels(flags: BenchFlags): Promise<BenchModel[]> {
  const decodeOnly = !!flags["decode-only"];
  if (flags.shape) {
    return [{ name: `${flags.shape} shape (random weights)`, dir: SHAPE_PREFIX + flags.shape, decodeOnly }];
  }
  return flags.model?.map((dir) => ({ name: flags.name ?? dir, dir, decodeOnly })) ?? [
    { name: "stories260K", dir: STORIES, decodeOnly },
    { name: "stories260K-flexidepth", dir: FLEXI, decodeOnly },
    { name: "demo (default, random weights)", dir: await ensureDefaultDemoModel(), decodeOnly },
    // Decode bound by the weights even on a CPU software GPU, where the small models above are bound by the
    // fixed cost of each dispatch: the bandwidth figure that the kernels, not the dispatches, decide.
    { name: "llama3-1b shape (random weights)", dir: SHAPE_PREFIX + "llama3-1b", decodeOnly: true },
    // DMTD's cycle on a Qwen3 of 16 layers (12 thinking, 4 decoding) bound by its weights on a CPU software GPU.
    { name: "dmtd-small shape (random weights)", dir: SHAPE_PREFIX + "dmtd-small", decodeOnly: true },
  ];
}

/** The options of `args`; exits 2 with one line on a bad value. */
export async function benchOptions(args: string[]): Promise<BenchOptions> {
  const flags = parseFlags(args);
  const repeat = Math.max(1, Number(flags.repeat ?? 3));
  const features: FeatureMode = flags["plain-kernels"] ? "none" : "auto";
  const quant = quantFlag(flags);
  const kvCache = kvCacheOption(flags);
  if (flags.shape !== undefined && !SHAPES[flags.shape]) {
    usageError(`unknown --shape ${flags.shape} — use one of ${Object.keys(SHAPES).join(", ")}`);
  }
  return { flags, repeat, features, quant, kvCache, models: await benchModels(flags) };
}
