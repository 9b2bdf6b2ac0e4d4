/**
 * What `flexidepth info` reports: a checkpoint's architecture, size and memory needs (from its headers
 * alone — no weight is read), and the GPU adapter with the features and limits that matter here.
 */

import { dirname, join } from "node:path";
import type { Checkpoint } from "../model/checkpoint.ts";
import type { Architecture, DmtdConfig, ModelConfig } from "../model/config.ts";
import { selectChatTemplate } from "../tokenizer/chat.ts";
import { describeAdapter, type GpuContext } from "../gpu/device.ts";
import { formatBytes } from "../util/format.ts";
import type { KvDtype } from "../gpu/profile.ts";
import { kvCacheBytes, kvElementBytes } from "../graph/kv_cache.ts";
import { isQuantizedTensor, type QuantFormat, quantRowBytes } from "../model/quant.ts";

/** Default context the engine allocates: the model's, at most 4096 (as Engine.load). */
export function defaultContext(ck: Checkpoint, context?: number): number {
  return Math.min(context ?? Math.min(ck.config.maxPositions, 4096), ck.config.maxPositions);
}

/** True when the checkpoint ships a chat template (tokenizer_config.json, or chat_template.jinja / .json). */
export async function checkpointHasChatTemplate(ck: Checkpoint): Promise<boolean> {
  if (selectChatTemplate(ck.tokenizerConfig.chat_template) !== null) return true;
  for (const f of ["chat_template.jinja", "chat_template.json"]) {
    try {
      await Deno.stat(join(dirname(ck.tokenizerJsonPath), f));
      return true;
    } catch { /* not there */ }
  }
  return false;
}

export interface ModelInfo {
  dir: string;
  architecture: string;
  model_type: string;
  layers: number;
  routed_layers: number[];
  hidden_size: number;
  intermediate_size: number;
  heads: number;
  kv_heads: number;
  head_dim: number;
  vocab_size: number;
  max_positions: number;
  rope_theta: number;
  rope_scaling: string | null;
  tied_embeddings: boolean;
  /** Qwen3: every head's q and k RMS-normalized (q_norm, k_norm) before RoPE. */
  qk_norm: boolean;
  /** Qwen2/2.5: q, k and v projections with biases. */
  attention_bias: boolean;
  /** DMTD's layer split and cycle, when the config names them. */
  dmtd: DmtdConfig | null;
  chat_template: boolean;
  parameters: number;
  /** Router and adapter parameters of the routed layers (included in `parameters`). */
  router_parameters: number;
  dtype: string;
  /** Projections quantized at load (--quant), or null. */
  quant: QuantFormat | null;
  /** Bytes of weights as loaded: the checkpoint's, with quantized projections at their quantized size. */
  weight_bytes: number;
  context: number;
  /** The KV cache's element type (`--kv-cache`, else the backend profile's for the GPU; f32 without one). */
  kv_cache_dtype: KvDtype;
  /** K and V for one sequence of `context` positions. */
  kv_cache_bytes: number;
  /** weights + KV cache (activations are small beside them). */
  memory_bytes: number;
}

export async function modelInfo(
  ck: Checkpoint,
  context?: number,
  quant: QuantFormat | null = null,
  kvDtype: KvDtype = "f32",
): Promise<ModelInfo> {
  const c = ck.config;
  let parameters = 0;
  let routerParameters = 0;
  let weightBytes = 0;
  for (const t of ck.tensors.values()) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    parameters += n;
    if (/\.router(_proj)?\./.test(t.name)) routerParameters += n;
    weightBytes += quant && isQuantizedTensor(t.name)
      ? t.shape[0] * quantRowBytes(quant, t.shape[1])
      : t.byteLength;
  }
  // A tied head gets a quantized copy of its own under --quant (src/graph/weights.ts).
  if (quant && !ck.tensors.has("lm_head.weight")) {
    weightBytes += c.vocabSize * quantRowBytes(quant, c.hiddenSize);
  }
  const ctx = defaultContext(ck, context);
  const kv = kvCacheBytes(c, ctx, kvDtype);
  return {
    dir: ck.dir,
    architecture: architectureName(c),
    model_type: c.modelType,
    layers: c.numLayers,
    routed_layers: c.routingLayers,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    heads: c.numHeads,
    kv_heads: c.numKvHeads,
    head_dim: c.headDim,
    vocab_size: c.vocabSize,
    max_positions: c.maxPositions,
    rope_theta: c.ropeTheta,
    rope_scaling: c.ropeScaling?.type ?? null,
    tied_embeddings: c.tieWordEmbeddings && !ck.tensors.has("lm_head.weight"),
    qk_norm: c.qkNorm,
    attention_bias: c.attentionBias,
    dmtd: c.dmtd,
    chat_template: await checkpointHasChatTemplate(ck),
    parameters,
    router_parameters: routerParameters,
    dtype: ck.dtype,
    quant,
    weight_bytes: weightBytes,
    context: ctx,
    kv_cache_dtype: kvDtype,
    kv_cache_bytes: kv,
    memory_bytes: weightBytes + kv,
  };
}

const FAMILY_NAMES: Record<Architecture, string> = { llama: "Llama", qwen2: "Qwen2", qwen3: "Qwen3" };

/** "Llama", "FlexiDepth Llama", "Qwen3", "FlexiDepth Qwen3", "DMTD Qwen3", … */
function architectureName(c: ModelConfig): string {
  const prefix = c.routingLayers.length > 0 ? "FlexiDepth " : c.dmtd ? "DMTD " : "";
  return prefix + FAMILY_NAMES[c.architecture];
}

/** What the attention heads get besides the projections, for people. */
function headsText(m: ModelInfo): string {
  const natural = m.hidden_size / m.heads;
  const dim = m.head_dim === natural
    ? `head dim ${m.head_dim}`
    : `head dim ${m.head_dim} (hidden / heads = ${natural})`;
  const extras = [
    ...(m.qk_norm ? ["q/k RMSNorm per head"] : []),
    ...(m.attention_bias ? ["q/k/v biases"] : []),
  ];
  return `${m.heads} query, ${m.kv_heads} KV, ${dim}${extras.length ? `; ${extras.join(", ")}` : ""}`;
}

export interface GpuInfo {
  adapter: string;
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
  limits: Record<string, number>;
}

const LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupsPerDimension",
];

export function gpuInfo(gpu: GpuContext): GpuInfo {
  const i = gpu.adapterInfo;
  const limits: Record<string, number> = {};
  for (const k of LIMITS) {
    const v = (gpu.limits as unknown as Record<string, number>)[k];
    if (typeof v === "number") limits[k] = v;
  }
  return {
    adapter: describeAdapter(gpu),
    vendor: i.vendor,
    architecture: i.architecture,
    device: i.device,
    description: i.description,
    features: [...gpu.device.features].map(String).sort(),
    limits,
  };
}

/** Problems the limits would cause, each with the fix. */
export function fitWarnings(m: ModelInfo, gpu: GpuInfo): string[] {
  const out: string[] = [];
  const binding = gpu.limits.maxStorageBufferBindingSize;
  const perLayer = m.kv_cache_bytes / (2 * m.layers);
  if (binding && perLayer > binding) {
    const fit = Math.floor(binding / (m.kv_heads * m.head_dim * kvElementBytes(m.kv_cache_dtype)));
    out.push(
      `the KV cache needs ${
        formatBytes(perLayer)
      } per layer, over maxStorageBufferBindingSize — use --context ${fit} or fewer`,
    );
  }
  return out;
}

/** Parameter counts for people: 8.03 B, 260.1 K. */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

/** The report as aligned text lines. */
export function infoText(m: ModelInfo, demo: boolean, gpu: GpuInfo | null, gpuError: string | null): string {
  const rows: [string, string][] = [
    ["model", `${m.dir}${demo ? " (built-in demo model: random weights)" : ""}`],
    ["architecture", `${m.architecture} (${m.model_type})`],
    [
      "layers",
      `${m.layers}${
        m.routed_layers.length
          ? `, ${m.routed_layers.length} routed: ${m.routed_layers.join(", ")} (a token uses ${
            m.layers - m.routed_layers.length
          }–${m.layers})`
          : ", none routed"
      }`,
    ],
    ["hidden", `${m.hidden_size} (MLP ${m.intermediate_size})`],
    ["heads", headsText(m)],
    ["vocabulary", `${m.vocab_size} (LM head ${m.tied_embeddings ? "tied to the embedding" : "of its own"})`],
    [
      "positions",
      `${m.max_positions} (RoPE θ ${m.rope_theta}${m.rope_scaling ? `, ${m.rope_scaling} scaling` : ""})`,
    ],
    ...(m.dmtd
      ? [[
        "DMTD",
        `thinking layers 0–${m.dmtd.thinkingLayers - 1}, decoding ${m.dmtd.thinkingLayers}–${
          m.layers - 1
        }, ` +
        `cycle ${m.dmtd.cycle}`,
      ] as [string, string]]
      : []),
    ["chat template", m.chat_template ? "yes" : "no (use run --raw)"],
    [
      "parameters",
      `${formatCount(m.parameters)}${
        m.router_parameters ? ` (${formatCount(m.router_parameters)} in routers and adapters)` : ""
      }`,
    ],
    [
      "weights",
      `${m.dtype}${m.quant ? `, projections quantized ${m.quant}` : ""}, ${formatBytes(m.weight_bytes)}`,
    ],
    ["KV cache", `${formatBytes(m.kv_cache_bytes)} for ${m.context} positions (${m.kv_cache_dtype})`],
    ["memory needed", `${formatBytes(m.memory_bytes)} (weights + KV cache)`],
  ];
  if (gpu) {
    rows.push(["GPU", `${gpu.adapter} (WebGPU does not report its memory size)`]);
    rows.push(["features", gpu.features.join(", ") || "(none)"]);
    for (const [k, v] of Object.entries(gpu.limits)) {
      rows.push([k, /Size$/.test(k) ? `${v} (${formatBytes(v)})` : String(v)]);
    }
    for (const w of fitWarnings(m, gpu)) rows.push(["warning", w]);
  } else {
    rows.push(["GPU", `unavailable: ${gpuError}`]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n");
}
