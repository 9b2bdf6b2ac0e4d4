/** `flexidepth info`: a model's architecture, size and memory needs, and the GPU it would run on. */

import { parseCommandFlags } from "./args.ts";
import { loadOptionsFromFlags, MODEL_HELP, MODEL_OPTIONS } from "./generate_flags.ts";
import { resolveModel } from "./resolve.ts";
import { fitWarnings, gpuInfo, infoText, modelInfo } from "./model_info.ts";
import { openCheckpoint } from "../model/checkpoint.ts";
import { openGpu } from "../gpu/device.ts";
import { kvCacheDtype } from "../gpu/profile.ts";
import { GpuError, UsageError } from "../errors.ts";

export const INFO_HELP = `flexidepth info — a model's architecture, size and memory needs, and the GPU adapter

Usage:
  flexidepth info [options]

Reads config.json and the safetensors headers only (no weights are loaded), then opens the GPU and
reports its features and the limits that matter (maxStorageBufferBindingSize, maxBufferSize). The exit
code is 1 when no GPU can be opened.

Options:
${MODEL_HELP}
  --json               one JSON object {model, demo, gpu, gpu_error, warnings} instead of text
  -h, --help           this help

Examples:
  flexidepth info --model ../shared/models/stories260K-flexidepth
  flexidepth info --model ~/models/FlexiDepth-Llama-3-8B-Instruct --context 8192
  flexidepth info --json | jq .gpu.limits
`;

const OPTIONS = {
  ...MODEL_OPTIONS,
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export async function infoCommand(argv: string[]): Promise<number> {
  const flags = parseCommandFlags("info", argv, OPTIONS, INFO_HELP);
  if (!flags) return 0;
  const { values: v, positionals } = flags;
  if (positionals.length > 0) {
    throw new UsageError(`info: unexpected argument "${positionals[0]}"`, "name the model with --model DIR");
  }
  const { context, features, quant, kvCache } = loadOptionsFromFlags(v);
  const resolved = await resolveModel(v.model);
  const ck = await openCheckpoint(resolved.dir);
  let ctx = null;
  let gpuError: string | null = null;
  try {
    ctx = await openGpu({ features });
  } catch (e) {
    if (!(e instanceof GpuError)) throw e;
    gpuError = e.message;
  }
  const gpu = ctx ? gpuInfo(ctx) : null;
  const kv = kvCache ?? kvCacheDtype(ctx?.hasF16 ?? false, ck.config.headDim);
  const model = await modelInfo(ck, context, quant, kv);
  if (v.json) {
    const warnings = gpu ? fitWarnings(model, gpu) : [];
    console.log(JSON.stringify({ model, demo: resolved.demo, gpu, gpu_error: gpuError, warnings }, null, 2));
  } else {
    console.log(infoText(model, resolved.demo, gpu, gpuError));
  }
  return gpu ? 0 : 1;
}
