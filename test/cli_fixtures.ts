/**
 * What the CLI tests (test/cli*.test.ts) share: the stories260K models, the shape of the small demo
 * checkpoints they write (pull.test.ts's too), a temporary folder removed at exit, and the lines of a jsonl
 * output parsed.
 */

import type { DemoOptions } from "../src/model/demo.ts";

const SHARED = new URL("../../shared/models/", import.meta.url).pathname;
/** stories260K with FlexiDepth routers on layers 2–4. */
export const FLEXI = `${SHARED}stories260K-flexidepth`;
export const BASE = `${SHARED}stories260K`;

/** A small demo checkpoint's shape: 2 layers, hidden 64, 4 query and 2 KV heads of 16. */
export const SMALL_DEMO: DemoOptions = {
  layers: 2,
  hidden: 64,
  heads: 4,
  kvHeads: 2,
  headDim: 16,
  intermediate: 96,
};

/** A fresh temporary folder, removed when the tests end. */
export async function cliTempDir(): Promise<string> {
  const tmp = await Deno.makeTempDir({ prefix: "flexidepth-cli-test-" });
  globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));
  return tmp;
}

/** Each non-empty line of `text` as JSON. */
export const jsonLines = (text: string) => text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
