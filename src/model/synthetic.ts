/**
 * Synthetic checkpoints for benchmarks: random weights of a real model's shape (see SHAPES in
 * ./demo_config.ts), generated in memory as the loader asks for each tensor instead of written to disk.
 */

import { join } from "node:path";
import { parseConfig } from "./config.ts";
import { DTYPE_BYTES } from "./dtype.ts";
import type { TensorInfo } from "./safetensors.ts";
import type { Checkpoint } from "./checkpoint.ts";
import {
  checkedDemoOptions,
  demoConfigJson,
  demoGenerationConfigJson,
  type DemoOptions,
  type ResolvedDemoOptions,
} from "./demo_config.ts";
import { elementCount, planTensors, type TensorPlan, tensorValues } from "./demo_tensors.ts";
import { writeModelFiles } from "./demo.ts";

/** Values per synthetic block; a tensor repeats its block (speed figures do not depend on the values). */
const SYNTHETIC_BLOCK = 1 << 20;

/**
 * A checkpoint of random weights of the given shape, generated in memory as the loader asks for each tensor:
 * one random block of 2^20 values per tensor (mean + std · normal, as the demo generator), repeated to the
 * tensor's size, so even an 8B shape builds in seconds. Config and tokenizer files go to `dir`.
 */
export async function syntheticCheckpoint(dir: string, opts: DemoOptions): Promise<Checkpoint> {
  const o = checkedDemoOptions(opts);
  const configJson = demoConfigJson(o);
  const config = parseConfig(configJson, "synthetic shape");
  await writeModelFiles(dir, { "config.json": configJson }, o.arch);
  const tensors = new Map<string, TensorInfo>();
  for (const t of planTensors(o)) tensors.set(t.name, syntheticTensor(t, o));
  const generationConfig = demoGenerationConfigJson(o.arch);
  return {
    dir,
    config,
    tensors,
    tokenizerJsonPath: join(dir, "tokenizer.json"),
    tokenizerConfig: JSON.parse(await Deno.readTextFile(join(dir, "tokenizer_config.json"))),
    generationConfig,
    eosTokenIds: [...new Set([...config.eosTokenIds, ...generationConfig.eos_token_id])],
    totalBytes: [...tensors.values()].reduce((sum, t) => sum + t.byteLength, 0),
    dtype: o.dtype,
  };
}

/** A tensor with no file behind it: its bytes are its block, repeated, made when the loader asks. */
function syntheticTensor(t: TensorPlan, o: ResolvedDemoOptions): TensorInfo {
  const byteLength = elementCount(t) * DTYPE_BYTES[o.dtype];
  return {
    name: t.name,
    dtype: o.dtype,
    shape: t.shape,
    file: `(synthetic ${t.name})`,
    offset: 0,
    byteLength,
    synthesize: () => {
      const block = tensorValues(t, o, Math.min(elementCount(t), SYNTHETIC_BLOCK));
      const out = new Uint8Array(byteLength);
      for (let at = 0; at < out.byteLength; at += block.byteLength) {
        out.set(block.subarray(0, Math.min(block.byteLength, out.byteLength - at)), at);
      }
      return out;
    },
  };
}
