/**
 * A local Hugging Face checkpoint folder: config.json, model.safetensors (or shards listed in
 * model.safetensors.index.json), tokenizer.json and the optional tokenizer / generation configs.
 * Opening one checks everything the engine will rely on — including every Llama and FlexiDepth
 * tensor's shape — so a bad folder fails here with the fix, not halfway through loading the GPU.
 */

import { isAbsolute, join, normalize, resolve } from "node:path";
import { CheckpointError } from "../errors.ts";
import { type ModelConfig, parseConfig } from "./config.ts";
import type { DType } from "./dtype.ts";
import { clip, readSafetensorsHeader, type TensorInfo } from "./safetensors.ts";

export interface Checkpoint {
  dir: string;
  config: ModelConfig;
  tensors: Map<string, TensorInfo>;
  tokenizerJsonPath: string;
  tokenizerConfig: Record<string, unknown>;
  generationConfig: Record<string, unknown> | null;
  /** Union of config.json's and generation_config.json's eos_token_id, in that order. */
  eosTokenIds: number[];
  /** sum of tensor bytes */
  totalBytes: number;
  /** dominant dtype of 2-D weights */
  dtype: DType;
}

type JsonObject = Record<string, unknown>;

const SINGLE_FILE = "model.safetensors";
const INDEX_FILE = "model.safetensors.index.json";
const REDOWNLOAD = "download the checkpoint again";

/** Whether `path` exists; a path the OS refuses (a file used as a folder, too long, a NUL byte) does not. */
async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return false;
    throw new CheckpointError(
      `cannot read ${clip(path, 200)} (${clip((err as Error).message, 200)})`,
      REDOWNLOAD,
    );
  }
}

async function checkFolder(dir: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new CheckpointError(
        `model folder ${dir} not found`,
        "pass --model DIR pointing at a Hugging Face checkpoint folder",
      );
    }
    throw new CheckpointError(`cannot read model folder ${dir} (${(err as Error).message})`);
  }
  if (!info.isDirectory) {
    throw new CheckpointError(
      `${dir} is not a folder`,
      "pass --model DIR pointing at the folder that holds config.json and the .safetensors files",
    );
  }
}

/** Reads a JSON object file; errors name the file. */
async function readJsonObject(path: string): Promise<JsonObject> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new CheckpointError(`cannot read ${path} (${clip((err as Error).message, 200)})`, REDOWNLOAD);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${path} is not valid JSON (${clip((err as Error).message, 160)})`, REDOWNLOAD);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new CheckpointError(`${path} is not a JSON object`, REDOWNLOAD);
  }
  return json as JsonObject;
}

async function readOptionalJson(path: string): Promise<JsonObject | null> {
  return (await exists(path)) ? await readJsonObject(path) : null;
}

/** Shard names come from a file we did not write: keep them inside the folder. */
function shardPath(dir: string, indexPath: string, shard: string): string {
  const clean = normalize(shard);
  if (isAbsolute(shard) || clean.startsWith("..")) {
    throw new CheckpointError(`${indexPath}: shard "${clip(shard)}" is outside the model folder`, REDOWNLOAD);
  }
  return join(dir, clean);
}

async function readShardedTensors(dir: string): Promise<Map<string, TensorInfo>> {
  const indexPath = join(dir, INDEX_FILE);
  const weightMap = (await readJsonObject(indexPath)).weight_map;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new CheckpointError(`${indexPath}: missing "weight_map" object`, REDOWNLOAD);
  }
  const mapped = Object.entries(weightMap as JsonObject);
  const shardOf = new Map<string, string>();
  for (const [name, shard] of mapped) {
    if (typeof shard !== "string") {
      throw new CheckpointError(
        `${indexPath}: weight_map entry "${clip(name)}" is not a file name`,
        REDOWNLOAD,
      );
    }
    shardOf.set(name, shardPath(dir, indexPath, shard));
  }
  if (shardOf.size === 0) throw new CheckpointError(`${indexPath}: weight_map is empty`, REDOWNLOAD);

  const tensors = new Map<string, TensorInfo>();
  for (const file of new Set(shardOf.values())) {
    if (!(await exists(file))) {
      throw new CheckpointError(
        `${indexPath} lists shard ${clip(file, 200)}, which is missing`,
        "the download is incomplete; fetch every model-*.safetensors file of the checkpoint",
      );
    }
    for (const t of await readSafetensorsHeader(file)) {
      const other = tensors.get(t.name);
      const owner = shardOf.get(t.name);
      if (other && owner === undefined) {
        throw new CheckpointError(
          `tensor "${clip(t.name)}" is in both ${other.file} and ${t.file}`,
          REDOWNLOAD,
        );
      }
      if (!other || owner === t.file) tensors.set(t.name, t);
    }
  }
  for (const [name, file] of shardOf) {
    if (tensors.get(name)?.file !== file) {
      throw new CheckpointError(
        `${indexPath} maps tensor "${clip(name)}" to ${clip(file, 200)}, which does not hold it`,
        REDOWNLOAD,
      );
    }
  }
  return tensors;
}

async function readTensors(dir: string): Promise<Map<string, TensorInfo>> {
  const single = join(dir, SINGLE_FILE);
  if (await exists(single)) return new Map((await readSafetensorsHeader(single)).map((t) => [t.name, t]));
  if (await exists(join(dir, INDEX_FILE))) return await readShardedTensors(dir);
  const hasTorchWeights = (await exists(join(dir, "pytorch_model.bin"))) ||
    (await exists(join(dir, "pytorch_model.bin.index.json")));
  throw new CheckpointError(
    `no ${SINGLE_FILE} or ${INDEX_FILE} in ${dir}`,
    hasTorchWeights
      ? "only .safetensors weights are supported; download the safetensors files of the model (most Hugging Face repos have them)"
      : "the folder holds no weights; download the model's .safetensors files into it",
  );
}

/** The dtype holding the most bytes of 2-D weights (ties: first seen). */
function dominantDtype(tensors: Map<string, TensorInfo>, fallback: DType | null): DType {
  const bytes = new Map<DType, number>();
  for (const t of tensors.values()) {
    if (t.shape.length === 2) bytes.set(t.dtype, (bytes.get(t.dtype) ?? 0) + t.byteLength);
  }
  let best: DType | null = null;
  for (const [dtype, n] of bytes) if (best === null || n > bytes.get(best)!) best = dtype;
  return best ?? fallback ?? "F32";
}

function eosIds(v: unknown): number[] {
  if (typeof v === "number" && Number.isInteger(v)) return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === "number" && Number.isInteger(x));
  return [];
}

/** Opens and fully checks a Hugging Face checkpoint folder (reads headers only, no weights). */
export async function openCheckpoint(dir: string): Promise<Checkpoint> {
  const absDir = resolve(dir);
  await checkFolder(absDir);
  const configPath = join(absDir, "config.json");
  if (!(await exists(configPath))) {
    throw new CheckpointError(
      `no config.json in ${absDir}`,
      "this is not a Hugging Face checkpoint folder; download the model's config.json too",
    );
  }
  const config = parseConfig(await readJsonObject(configPath), configPath);
  const tokenizerJsonPath = join(absDir, "tokenizer.json");
  if (!(await exists(tokenizerJsonPath))) {
    throw new CheckpointError(
      `no tokenizer.json in ${absDir}`,
      "download the model's tokenizer.json (the fast-tokenizer file) into the folder",
    );
  }
  const tokenizerConfig = (await readOptionalJson(join(absDir, "tokenizer_config.json"))) ?? {};
  const generationConfig = await readOptionalJson(join(absDir, "generation_config.json"));
  const tensors = await readTensors(absDir);
  const ck: Checkpoint = {
    dir: absDir,
    config,
    tensors,
    tokenizerJsonPath,
    tokenizerConfig,
    generationConfig,
    eosTokenIds: [...new Set([...config.eosTokenIds, ...eosIds(generationConfig?.eos_token_id)])],
    totalBytes: [...tensors.values()].reduce((sum, t) => sum + t.byteLength, 0),
    dtype: dominantDtype(tensors, config.torchDtype),
  };
  validateLlamaTensors(ck);
  return ck;
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** The named tensor, which must exist with exactly this shape. */
export function requireTensor(ck: Checkpoint, name: string, shape: number[]): TensorInfo {
  const t = ck.tensors.get(name);
  if (!t) {
    throw new CheckpointError(
      `tensor ${name} missing from ${ck.dir}`,
      "the checkpoint does not match its config.json; download it again",
    );
  }
  if (!sameShape(t.shape, shape)) {
    throw new CheckpointError(
      `tensor ${name} has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}] from config.json`,
      "the checkpoint does not match its config.json; download it again",
    );
  }
  return t;
}

/** Names of a routed layer's router and adapter tensors (the adapter is `router_proj`, with swapped names). */
export function routerTensorNames(layer: number) {
  const p = `model.layers.${layer}`;
  return {
    enc: `${p}.router.router_enc.weight`,
    norm: `${p}.router.router_norm.weight`,
    dec: `${p}.router.router_dec.weight`,
    head: `${p}.router.router_head.weight`,
    gate: `${p}.router_proj.gate_proj.weight`,
    down: `${p}.router_proj.down_proj.weight`,
    up: `${p}.router_proj.up_proj.weight`,
  };
}

function routedTensor(ck: Checkpoint, layer: number, name: string): TensorInfo {
  const t = ck.tensors.get(name);
  if (!t) {
    throw new CheckpointError(
      `routed layer ${layer} lacks tensor ${name} — the checkpoint is not a complete FlexiDepth model`,
      "download the full FlexiDepth checkpoint, or drop the layer from routing_layers in config.json",
    );
  }
  return t;
}

/** Rows of a `[rows, hidden]` router matrix, checked against the config's reduction factor when it has one. */
function bottleneckRows(
  ck: Checkpoint,
  layer: number,
  name: string,
  full: number,
  factor: number | null,
  key: string,
) {
  const t = routedTensor(ck, layer, name);
  const hidden = ck.config.hiddenSize;
  if (t.shape.length !== 2 || t.shape[1] !== hidden || t.shape[0] < 1) {
    throw new CheckpointError(
      `tensor ${name} has shape [${t.shape.join(", ")}], expected [n, ${hidden}]`,
      "the checkpoint does not match its config.json; download it again",
    );
  }
  if (factor !== null && t.shape[0] !== Math.max(1, Math.floor(full / factor))) {
    throw new CheckpointError(
      `tensor ${name} has ${t.shape[0]} rows but ${key} ${factor} gives ${
        Math.max(1, Math.floor(full / factor))
      }`,
      `fix ${key} in config.json (or remove it to infer the size from the tensors)`,
    );
  }
  return t.shape[0];
}

/** Router bottleneck width and adapter intermediate size of a routed layer. */
export function routerDims(ck: Checkpoint, layer: number): { bottleneck: number; adapter: number } {
  const c = ck.config;
  const names = routerTensorNames(layer);
  return {
    bottleneck: bottleneckRows(
      ck,
      layer,
      names.enc,
      c.hiddenSize,
      c.routerReductionFactor,
      "router_reduction_factor",
    ),
    adapter: bottleneckRows(
      ck,
      layer,
      names.gate,
      c.intermediateSize,
      c.projReductionFactor,
      "proj_reduction_factor",
    ),
  };
}

/**
 * A bias the engine would not add is refused rather than ignored: an o_proj or MLP bias, or q/k/v biases in a
 * checkpoint whose config does not say it has them (only Qwen2/2.5's q/k/v biases are supported).
 */
function refuseUnknownBiases(ck: Checkpoint): void {
  const expected = ck.config.attentionBias ? /\.self_attn\.[qkv]_proj\.bias$/ : null;
  for (const name of ck.tensors.keys()) {
    if (!/^model\.layers\.\d+\..*\.bias$/.test(name) || expected?.test(name)) continue;
    throw new CheckpointError(
      `tensor ${clip(name)} is a bias that ${ck.config.architecture} as configured does not have`,
      "only Qwen2/2.5's q/k/v projection biases are supported (model_type qwen2); an o_proj or MLP bias is not",
    );
  }
}

/** Checks that every tensor the engine reads exists with the shape config.json implies. */
export function validateLlamaTensors(ck: Checkpoint): void {
  const c = ck.config;
  const hidden = c.hiddenSize;
  const qRows = c.numHeads * c.headDim;
  const kvRows = c.numKvHeads * c.headDim;
  const inter = c.intermediateSize;
  requireTensor(ck, "model.embed_tokens.weight", [c.vocabSize, hidden]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    requireTensor(ck, `${p}.input_layernorm.weight`, [hidden]);
    requireTensor(ck, `${p}.self_attn.q_proj.weight`, [qRows, hidden]);
    requireTensor(ck, `${p}.self_attn.k_proj.weight`, [kvRows, hidden]);
    requireTensor(ck, `${p}.self_attn.v_proj.weight`, [kvRows, hidden]);
    requireTensor(ck, `${p}.self_attn.o_proj.weight`, [hidden, qRows]);
    requireTensor(ck, `${p}.post_attention_layernorm.weight`, [hidden]);
    requireTensor(ck, `${p}.mlp.gate_proj.weight`, [inter, hidden]);
    requireTensor(ck, `${p}.mlp.up_proj.weight`, [inter, hidden]);
    requireTensor(ck, `${p}.mlp.down_proj.weight`, [hidden, inter]);
    if (c.qkNorm) {
      requireTensor(ck, `${p}.self_attn.q_norm.weight`, [c.headDim]);
      requireTensor(ck, `${p}.self_attn.k_norm.weight`, [c.headDim]);
    }
    if (c.attentionBias) {
      requireTensor(ck, `${p}.self_attn.q_proj.bias`, [qRows]);
      requireTensor(ck, `${p}.self_attn.k_proj.bias`, [kvRows]);
      requireTensor(ck, `${p}.self_attn.v_proj.bias`, [kvRows]);
    }
  }
  refuseUnknownBiases(ck);
  for (const layer of c.routingLayers) {
    const names = routerTensorNames(layer);
    for (const name of Object.values(names)) routedTensor(ck, layer, name);
    const { bottleneck: r, adapter: a } = routerDims(ck, layer);
    requireTensor(ck, names.norm, [r]);
    requireTensor(ck, names.dec, [hidden, r]);
    requireTensor(ck, names.head, [1, hidden]);
    requireTensor(ck, names.down, [a, hidden]);
    requireTensor(ck, names.up, [hidden, a]);
  }
  requireTensor(ck, "model.norm.weight", [hidden]);
  if (!c.tieWordEmbeddings || ck.tensors.has("lm_head.weight")) {
    requireTensor(ck, "lm_head.weight", [c.vocabSize, hidden]);
  }
}
