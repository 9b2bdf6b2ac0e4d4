/**
 * Running the checkpoint fuzzer's cases (test/fuzz.test.ts): each must end in success, checked, or in a
 * one-line CheckpointError — never another exception, a hang or a large allocation — and a successful read
 * must describe tensors wholly inside their files.
 */

import assert from "node:assert/strict";
import { CheckpointError } from "../src/errors.ts";
import { DTYPE_BYTES } from "../src/model/dtype.ts";
import { readTensorBytes, type TensorInfo } from "../src/model/safetensors.ts";

const CASE_TIMEOUT_MS = 5_000;
/** Resident memory may grow this much over the baseline (the files are ~100 KB). */
const RSS_SLACK = 256 * 2 ** 20;

const baselineRss = () => Deno.memoryUsage().rss;

/** Runs cases and counts their outcomes and the kinds of error message. */
export class Fuzzer {
  readonly counts = { ok: 0, error: 0 };
  readonly messages = new Map<string, number>();
  private readonly rssCap = baselineRss() + RSS_SLACK;

  /** Runs one case: success (checked by `onOk`) or a one-line CheckpointError, in time and memory. */
  async run<T>(label: string, body: () => Promise<T>, onOk: (v: T) => Promise<void> | void): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${label}: no answer within ${CASE_TIMEOUT_MS} ms`)),
        CASE_TIMEOUT_MS,
      );
    });
    let result: T;
    try {
      result = await Promise.race([body(), timeout]);
    } catch (err) {
      clearTimeout(timer);
      if (!(err instanceof CheckpointError)) {
        const e = err as Error;
        assert.fail(
          `${label}: expected a CheckpointError, got ${e?.name}: ${String(e?.message).slice(0, 300)}`,
        );
      }
      assert.ok(err.message.length > 0, `${label}: empty message`);
      assert.ok(
        !/[\n\r]/.test(err.message),
        `${label}: message spans lines: ${JSON.stringify(err.message.slice(0, 300))}`,
      );
      assert.ok(err.message.length < 2000, `${label}: message of ${err.message.length} characters`);
      this.counts.error++;
      const key = err.message.replace(/\/[^ ]*\//g, "").replace(/\d+/g, "N").slice(0, 60);
      this.messages.set(key, (this.messages.get(key) ?? 0) + 1);
      this.checkMemory(label);
      return;
    }
    clearTimeout(timer);
    await onOk(result);
    this.counts.ok++;
    this.checkMemory(label);
  }

  private checkMemory(label: string): void {
    const rss = baselineRss();
    assert.ok(rss < this.rssCap, `${label}: resident memory ${(rss / 2 ** 20).toFixed(0)} MiB over the cap`);
  }
}

/** A successful read must describe tensors that lie wholly inside their file's data section. */
export async function checkTensors(tensors: Iterable<TensorInfo>, label: string): Promise<void> {
  const sizes = new Map<string, number>();
  for (const t of tensors) {
    let size = sizes.get(t.file);
    if (size === undefined) sizes.set(t.file, size = (await Deno.stat(t.file)).size);
    const count = t.shape.reduce((a, b) => a * b, 1);
    assert.ok(Number.isSafeInteger(t.offset) && t.offset >= 8, `${label}: ${t.name} offset ${t.offset}`);
    assert.equal(t.byteLength, count * DTYPE_BYTES[t.dtype], `${label}: ${t.name} length`);
    assert.ok(t.offset + t.byteLength <= size, `${label}: ${t.name} ends past the file`);
    if (t.byteLength <= 1 << 16) assert.equal((await readTensorBytes(t)).byteLength, t.byteLength);
  }
}
