/**
 * GPU faults on the software GPU: a model that does not fit the (forced, smaller) limits fails at load with
 * one line naming its sizes and the limits; a device destroyed mid-generation or an error no scope caught
 * fails the generation with a GpuError instead of hanging or returning garbage.
 */

import assert from "node:assert/strict";
import { describeError, GpuError } from "../src/errors.ts";
import { Model } from "../src/generation/model.ts";
import { checkKernelLimits, openGpu, STORAGE_BUFFERS_NEEDED } from "../src/gpu/device.ts";
import { writeDemoCheckpoint } from "../src/model/demo.ts";
import { testGpu } from "./harness.ts";

const STORIES = new URL("../../shared/models/stories260K", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "flexidepth-gpu-faults-" });
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

/** A GpuError whose CLI line is one line matching every pattern. */
async function rejectsWithGpuError(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<string> {
  const err = await promise.then(() => null, (e) => e);
  assert.ok(err instanceof GpuError, `expected a GpuError, got ${err}`);
  const { line, exitCode } = describeError(err);
  assert.equal(exitCode, 1);
  assert.ok(!/[\r\n]/.test(line), `one line: ${line}`);
  for (const p of patterns) assert.match(line, p);
  return line;
}

Deno.test("gpu: an adapter binding too few storage buffers per stage is refused with the numbers", async () => {
  const few = { maxStorageBuffersPerShaderStage: STORAGE_BUFFERS_NEEDED - 3 };
  await rejectsWithGpuError(
    Promise.resolve().then(() => checkKernelLimits(few)),
    new RegExp(`binds ${STORAGE_BUFFERS_NEEDED - 3} storage buffers.*need ${STORAGE_BUFFERS_NEEDED}`),
    /driver/,
  );
  checkKernelLimits({ maxStorageBuffersPerShaderStage: STORAGE_BUFFERS_NEEDED });
  checkKernelLimits((await testGpu("plain")).limits);
});

Deno.test("gpu: a tensor whose rows exceed the (forced) maxBufferSize fails the load with one line", async () => {
  const dir = `${tmp}/f32`;
  await writeDemoCheckpoint(dir, {
    layers: 1,
    hidden: 64,
    heads: 4,
    kvHeads: 2,
    headDim: 16,
    intermediate: 96,
    vocabSize: 300,
    dtype: "F32",
  });
  const gpu = await testGpu("plain");
  const line = await rejectsWithGpuError(
    Model.load(dir, { gpu, progress: false, limits: { maxBufferSize: 200 } }),
    /does not fit this GPU/,
    /model\.embed_tokens\.weight \[300, 64\] needs rows of 256 B in one buffer, over the GPU's limit of 200 B/,
    /maxBufferSize 200 B/,
    /the model has [\d.]+ KiB of weights/,
    /— use a smaller model/,
  );
  assert.ok(line.startsWith("error: the model does not fit"), line);
  // Rows that fit: the matrices are split into buffers of a few rows each, and the tokens do not change.
  const whole = await Model.load(dir, { gpu, progress: false });
  const split = await Model.load(dir, { gpu, progress: false, limits: { maxBufferSize: 512 } });
  assert.ok(
    split.engine.weights.embed.parts.length >= 150,
    `${split.engine.weights.embed.parts.length} parts`,
  );
  const ids = async (m: Model) =>
    (await m.generate({ ids: [1, 17, 42] }, { maxTokens: 6 }).collect()).tokens.map((t) => t.id);
  assert.deepEqual(await ids(split), await ids(whole));
});

Deno.test("gpu: a KV cache over the (forced) binding limit names its size and the --context that fits", async () => {
  const gpu = await testGpu("plain");
  await rejectsWithGpuError(
    Model.load(STORIES, { gpu, progress: false, limits: { maxStorageBufferBindingSize: 32 * 1024 } }),
    /KV cache of 512 positions × 1 sequences needs 64\.0 KiB per layer, over the GPU's binding limit of 32\.0 KiB/,
    /use --context 256 or fewer/,
  );
});

Deno.test("gpu: destroying the device mid-generation rejects the generation with a GpuError", async () => {
  // A device of its own: the shared test devices must survive.
  const gpu = await openGpu({ features: "none" });
  const model = await Model.load(STORIES, { gpu, progress: false });
  const t0 = performance.now();
  const gen = model.generate("Once upon a time", { maxTokens: 400, window: 4 });
  let seen = 0;
  const run = (async () => {
    for await (const _ of gen) if (++seen === 5) gpu.device.destroy();
  })();
  await rejectsWithGpuError(run, /the GPU device was lost \(destroyed/, /[KM]iB of weights/, /maxBufferSize/);
  await assert.rejects(gen.summary, GpuError);
  assert.ok(seen >= 5 && seen < 400, `${seen} tokens`);
  // A new generation on the dead device fails the same way instead of hanging.
  await rejectsWithGpuError(model.generate("Once", { maxTokens: 5 }).collect(), /device was lost/);
  assert.ok(performance.now() - t0 < 30_000);
});

Deno.test("gpu: an error no scope caught fails the generation at the next step", async () => {
  const gpu = await openGpu({ features: "none" });
  const model = await Model.load(STORIES, { gpu, progress: false });
  const gen = model.generate("Once upon a time", { maxTokens: 400, window: 1 });
  let seen = 0;
  const run = (async () => {
    for await (const _ of gen) {
      // An allocation over the device's limit: a validation error outside any error scope.
      if (++seen === 3) {
        gpu.device.createBuffer({ size: gpu.limits.maxBufferSize + 16, usage: GPUBufferUsage.STORAGE });
      }
    }
  })();
  await rejectsWithGpuError(
    run,
    /GPU error while running a model of/,
    /greater than the maximum buffer size/,
  );
  assert.ok(seen >= 3 && seen < 400, `${seen} tokens`);
  gpu.device.destroy();
});
