/**
 * The DMTD tests' checkpoints (test/dmtd*.test.ts): small demos with DMTD keys, written to a temporary
 * directory of the test file's own.
 */

import { writeDemoCheckpoint } from "../src/model/demo.ts";

export const tmp = await Deno.makeTempDir({ prefix: "flexidepth-dmtd-test-" });

/**
 * A small checkpoint with DMTD keys: `thinking` layers of `layers` think, τ = `cycle`; Llama layout, or Qwen3's
 * (q/k norms, head_dim ≠ hidden / heads, tied head) with `qwen3`.
 */
export async function dmtdDemo(
  name: string,
  thinking = 3,
  layers = 4,
  cycle = 4,
  qwen3 = false,
): Promise<string> {
  const dir = `${tmp}/${name}`;
  await writeDemoCheckpoint(dir, {
    ...(qwen3 ? { arch: "qwen3" as const, headDim: 24 } : { headDim: 16 }),
    seed: 3,
    layers,
    hidden: 64,
    heads: 4,
    kvHeads: 2,
    intermediate: 96,
    vocabSize: 1000,
    dmtd: { thinking, cycle },
  });
  return dir;
}
