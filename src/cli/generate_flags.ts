/**
 * Sampling, routing and model-loading flags shared by `run`, `chat` and `batch`, and the same
 * settings as a batch line's `options` object ({max_tokens, temperature, ...}): one table, one check.
 */

import { choiceFlag, numberFlag } from "./args.ts";
import { QUANT_FORMATS, type QuantFormat } from "../model/quant.ts";
import type { GenerateOptions } from "../generation/generate.ts";
import type { LoadOptions } from "../generation/model.ts";
import { InputError, UsageError } from "../errors.ts";
import { KV_DTYPES, type KvDtype } from "../gpu/profile.ts";

/** A numeric generation setting: flag name, JSON key, GenerateOptions field, default and range. */
interface NumberSetting {
  flag: string;
  key: string;
  field: "maxTokens" | "temperature" | "topK" | "topP" | "seed" | "threshold";
  fallback: number;
  min?: number;
  max?: number;
  integer?: boolean;
}

const NUMBER_SETTINGS: NumberSetting[] = [
  { flag: "max-tokens", key: "max_tokens", field: "maxTokens", fallback: 256, min: 1, integer: true },
  { flag: "temperature", key: "temperature", field: "temperature", fallback: 0, min: 0 },
  { flag: "top-k", key: "top_k", field: "topK", fallback: 0, min: 0, integer: true },
  { flag: "top-p", key: "top_p", field: "topP", fallback: 1, min: 0, max: 1 },
  { flag: "seed", key: "seed", field: "seed", fallback: 0, min: 0, max: 2 ** 32 - 1, integer: true },
  { flag: "threshold", key: "threshold", field: "threshold", fallback: 0.5, min: 0, max: 1 },
];

/** parseArgs options for sampling and routing. */
export const GENERATE_OPTIONS = {
  "max-tokens": { type: "string" },
  temperature: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  seed: { type: "string" },
  stop: { type: "string", multiple: true },
  threshold: { type: "string" },
  "full-depth": { type: "boolean" },
  cycle: { type: "string" },
  "dmtd-prefill": { type: "string" },
  window: { type: "string" },
} as const;

/** parseArgs options for choosing and loading the model. */
export const MODEL_OPTIONS = {
  model: { type: "string" },
  context: { type: "string" },
  quant: { type: "string" },
  "kv-cache": { type: "string" },
  "plain-kernels": { type: "boolean" },
} as const;

/** parseArgs options for the chat template's variables. */
export const TEMPLATE_OPTIONS = {
  thinking: { type: "string" },
} as const;

/** Help lines for TEMPLATE_OPTIONS. */
export const TEMPLATE_HELP =
  `  --thinking on|off    the chat template's enable_thinking (Qwen3: off opens the answer with an empty
                       <think></think> block, so the model answers without reasoning; default: the template's)`;

/** --thinking → the template variables it sets (none without the flag: the template's own default). */
export function chatVariablesFromFlags(v: { thinking?: string }): Record<string, unknown> {
  if (v.thinking === undefined) return {};
  return { enable_thinking: choiceFlag(v.thinking, "--thinking", ["on", "off"], "on") === "on" };
}

/** Help lines for GENERATE_OPTIONS (`--max-tokens` default given by the command). */
export function generateHelp(maxTokens = 256): string {
  return `  --max-tokens N       tokens to generate (default ${maxTokens})
  --temperature T      0 = greedy (default 0)
  --top-k K            keep the K most likely tokens (0 = off)
  --top-p P            nucleus sampling mass (1 = off)
  --seed S             sampling seed (default 0)
  --stop TEXT          stop at this text (repeatable)
  --threshold G        FlexiDepth: run a routed layer when its gate g > G (default 0.5, as released)
  --full-depth         every layer for every token (the base model), for comparison: FlexiDepth runs
                       each routed layer in full, DMTD the plain stack
  --cycle N            DMTD: tokens per cycle, one pass through every layer each (default: the model's)
  --dmtd-prefill M     DMTD: the prompt rows' input to the decoding layers, reference (embedding + the
                       thinking layers' output, as the released code) or plain (their output alone)
  --window N|auto      decode steps kept in flight (default auto; 1 = wait for each token)`;
}

/** Help lines for MODEL_OPTIONS. */
/** Help lines for --kv-cache (MODEL_HELP and the commands with their own option lists). */
export const KV_CACHE_HELP =
  `  --kv-cache f16|f32   the KV cache's type: f16 halves its memory and attention's reads at long context
                       (attention sums in f32); default f16 where the GPU offers shader-f16, else f32`;

export const MODEL_HELP =
  `  --model DIR          Hugging Face checkpoint folder (default: $FLEXIDEPTH_MODEL, else the bundled model)
  --context N          positions of KV cache (default: model's, at most 4096)
  --quant q8|q4        quantize the model's projections at load: about 1/2 (q8) or 1/4 (q4) of 16-bit
                       weights' memory and bytes per token, at some cost in quality (default: none)
${KV_CACHE_HELP}
  --plain-kernels      use only the portable kernels (no shader-f16 / subgroups)`;

type GenerateValues = {
  [K in keyof typeof GENERATE_OPTIONS]?: (typeof GENERATE_OPTIONS)[K]["type"] extends "boolean" ? boolean
    : K extends "stop" ? string[]
    : string;
};

/** Flag values → GenerateOptions (every field set; bad values are UsageErrors naming the flag). */
export function generateOptionsFromFlags(v: GenerateValues, defaults: { maxTokens?: number } = {}) {
  const out: GenerateOptions & Required<Omit<GenerateOptions, "signal" | "ignoreEos">> = {
    maxTokens: 0,
    temperature: 0,
    topK: 0,
    topP: 1,
    seed: 0,
    threshold: 0.5,
    stop: v.stop ?? [],
    fullDepth: v["full-depth"] ?? false,
    window: v.window === undefined || v.window === "auto"
      ? "auto"
      : numberFlag(v.window, "--window", 1, { min: 1, max: 64, integer: true }),
    dmtd: {
      cycle: v.cycle === undefined
        ? undefined
        : numberFlag(v.cycle, "--cycle", 4, { min: 1, max: 64, integer: true }),
      prefill: choiceFlag(v["dmtd-prefill"], "--dmtd-prefill", ["reference", "plain"] as const, "reference"),
    },
  };
  for (const s of NUMBER_SETTINGS) {
    const fallback = s.field === "maxTokens" ? defaults.maxTokens ?? s.fallback : s.fallback;
    out[s.field] = numberFlag(
      v[s.flag as keyof GenerateValues] as string | undefined,
      `--${s.flag}`,
      fallback,
      s,
    );
  }
  return out;
}

/** Keys a batch line's `options` object may set. */
export const OPTION_KEYS = [...NUMBER_SETTINGS.map((s) => s.key), "stop", "full_depth", "cycle"];

/**
 * A batch line's `options` object over the command's defaults. Throws InputError naming the key and
 * the fix; `where` prefixes the message (e.g. "line 3").
 */
export function generateOptionsFromJson(
  options: unknown,
  base: GenerateOptions,
  where: string,
): GenerateOptions {
  if (options === undefined || options === null) return { ...base };
  if (typeof options !== "object" || Array.isArray(options)) {
    throw new InputError(`${where}: "options" must be an object`, `e.g. {"max_tokens": 32}`);
  }
  const o = options as Record<string, unknown>;
  const out: GenerateOptions = { ...base };
  for (const key of Object.keys(o)) {
    if (!OPTION_KEYS.includes(key)) {
      throw new InputError(`${where}: unknown option "${key}"`, `options may set ${OPTION_KEYS.join(", ")}`);
    }
  }
  for (const s of NUMBER_SETTINGS) {
    const value = o[s.key];
    if (value === undefined) continue;
    if (typeof value !== "number") {
      throw new InputError(`${where}: option "${s.key}" must be a number, got ${JSON.stringify(value)}`);
    }
    try {
      out[s.field] = numberFlag(String(value), `option "${s.key}"`, s.fallback, s);
    } catch (e) {
      if (e instanceof UsageError) throw new InputError(`${where}: ${e.message}`);
      throw e;
    }
  }
  if (o.stop !== undefined) {
    const stop = typeof o.stop === "string" ? [o.stop] : o.stop;
    if (!Array.isArray(stop) || !stop.every((x) => typeof x === "string")) {
      throw new InputError(`${where}: option "stop" must be a string or a list of strings`);
    }
    out.stop = stop;
  }
  if (o.full_depth !== undefined) {
    if (typeof o.full_depth !== "boolean") {
      throw new InputError(`${where}: option "full_depth" must be true or false`);
    }
    out.fullDepth = o.full_depth;
  }
  if (o.cycle !== undefined) {
    if (typeof o.cycle !== "number" || !Number.isInteger(o.cycle) || o.cycle < 1 || o.cycle > 64) {
      throw new InputError(`${where}: option "cycle" must be a whole number from 1 to 64`);
    }
    out.dmtd = { ...out.dmtd, cycle: o.cycle };
  }
  return out;
}

type ModelValues = {
  model?: string;
  context?: string;
  quant?: string;
  "kv-cache"?: string;
  "plain-kernels"?: boolean;
};

/** Flag values → Model.load options (the model folder is resolved separately). */
export function loadOptionsFromFlags(v: ModelValues): LoadOptions {
  return {
    context: v.context === undefined
      ? undefined
      : numberFlag(v.context, "--context", 0, { min: 2, integer: true }),
    features: v["plain-kernels"] ? "none" : "auto",
    quant: quantFlag(v.quant),
    kvCache: kvCacheFlag(v["kv-cache"]),
  };
}

/** --kv-cache: f16 or f32 (undefined: the backend profile's choice). */
export function kvCacheFlag(value: string | undefined): KvDtype | undefined {
  if (value === undefined || (KV_DTYPES as string[]).includes(value)) return value as KvDtype | undefined;
  throw new UsageError(
    `--kv-cache must be f16 or f32, got "${value}"`,
    "use --kv-cache f32 for a full-precision cache (default: f16 where the GPU offers shader-f16)",
  );
}

/** --quant: none, q8 or q4. */
export function quantFlag(value: string | undefined): QuantFormat | null {
  const q = choiceFlag<QuantFormat | "none">(value, "--quant", ["none", ...QUANT_FORMATS], "none");
  return q === "none" ? null : q;
}
