/**
 * What the loader tests (test/loader*.test.ts) share: a small demo checkpoint's options, temporary folders,
 * the CheckpointError check, and a JSON file edited in place.
 */

import assert from "node:assert/strict";
import { CheckpointError } from "../src/errors.ts";
import type { DemoOptions } from "../src/model/demo.ts";
import { tempDirs } from "./temp_dir.ts";

/** Small vocabulary so demo checkpoints are tiny and quick to write. */
export const SMALL: DemoOptions = { vocabSize: 300, hidden: 32, headDim: 8, intermediate: 64, layers: 2 };

/** Runs `fn` in a fresh temporary folder, removed afterwards. */
export const withTempDir = tempDirs("flexidepth-loader-");

/** Expects a CheckpointError whose message matches every pattern. */
export async function rejectsWith(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof CheckpointError, `expected CheckpointError, got ${err}`);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

/** Reads the JSON file at `path`, lets `change` edit it, and writes it back. */
export async function editJson(path: string, change: (json: Record<string, unknown>) => void): Promise<void> {
  const json = JSON.parse(await Deno.readTextFile(path));
  change(json);
  await Deno.writeTextFile(path, JSON.stringify(json));
}
