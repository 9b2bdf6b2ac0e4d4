/**
 * The whole GPU forward against the TypeScript reference on the same weights: logits over a prefill and
 * 16 decode steps, greedy tokens, every dtype, sharded checkpoints, tensors split across bindings, Qwen3 and
 * Qwen2 beside Llama, and the real stories260K model's golden output.
 */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { assertClose, families, objectsCreatedWhileStreaming, testGpu } from "./harness.ts";
import { argmax, ReferenceModel } from "./reference.ts";
import { writeDemoCheckpoint } from "../src/model/demo.ts";
import { type Checkpoint, openCheckpoint } from "../src/model/checkpoint.ts";
import { Engine } from "../src/engine/engine.ts";
import { Model } from "../src/generation/model.ts";
import type { DType } from "../src/model/dtype.ts";
import type { QuantFormat } from "../src/model/quant.ts";
import type { BackendProfile } from "../src/gpu/profile.ts";
import type { WeightStorage } from "../src/gpu/matrix.ts";

const STORIES = new URL("../../shared/models/stories260K", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "flexidepth-engine-test-" });
const small = { layers: 2, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, intermediate: 96, vocabSize: 1000 };

async function demo(name: string, opts: Record<string, unknown>): Promise<string> {
  const dir = `${tmp}/${name}`;
  await writeDemoCheckpoint(dir, { seed: 7, ...small, ...opts });
  return dir;
}

/** Prefill `prompt`, then 16 greedy decode steps, comparing logits with the reference at every step. */
async function compareLogits(
  engine: Engine,
  ref: ReferenceModel,
  prompt: number[],
  tol: { atol: number; rtol: number },
) {
  // The reference rounds K/V to f16 where the engine's cache holds f16 (the fast family's default here).
  ref.kvF16 = engine.backend.kvCache === "f16";
  const cache = ref.newCache();
  let refLogits: Float32Array = new Float32Array();
  prompt.forEach((t, p) => refLogits = ref.forward(t, p, cache));
  let gpuLogits = await engine.logitsAfter(0, prompt, 0);
  assertClose(gpuLogits, refLogits, tol, "prefill logits");
  for (let i = 0; i < 16; i++) {
    const next = argmax(refLogits);
    assertEquals(argmax(gpuLogits), next, `greedy token at decode step ${i}`);
    const pos = prompt.length + i;
    refLogits = ref.forward(next, pos, cache);
    gpuLogits = await engine.logitsAfter(0, [next], pos);
    assertClose(gpuLogits, refLogits, tol, `decode step ${i} logits`);
  }
}

/**
 * An engine whose one-row quantized steps quantize x to int8 blocks (quantize_x.wgsl, or the norm before) from
 * a one-token prompt on, against the reference on the same weights with x rounded alike: each step's logits
 * match it — until a value that the GPU's norm (its last bit) puts on the other side of a rounding boundary
 * moves one x by a step, and the cache carries that on: from then on they must lie ≥ 1.5× closer to it than
 * to the reference with x in floats (RMS over the vocabulary; measured ≥ 1.9× here).
 */
async function compareQuantizedX(engine: Engine, ck: Checkpoint, first: number, quant: QuantFormat) {
  const ref = await ReferenceModel.load(ck, { quant });
  ref.kvF16 = engine.backend.kvCache === "f16";
  const [cache, floatCache] = [ref.newCache(), ref.newCache()];
  const rms = (a: Float32Array, b: Float32Array) =>
    Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0) / a.length);
  let token = first, gpuLogits = await engine.logitsAfter(0, [first], 0), matched = 0;
  for (let pos = 0; pos <= 16; pos++) {
    const want = ref.forward(token, pos, cache, { quantizeX: true });
    const floatX = ref.forward(token, pos, floatCache);
    const off = rms(gpuLogits, want), floatOff = rms(gpuLogits, floatX);
    const { atol, rtol } = TOL.F32;
    const close = gpuLogits.every((v, i) => Math.abs(v - want[i]) <= atol + rtol * Math.abs(want[i]));
    const why = `${quant} step ${pos}, ${matched} matched: off ${off}, floats ${floatOff}`;
    if (close && matched === pos) matched++;
    else ok(floatOff >= 1.5 * off, why);
    if (pos === 16) break;
    token = argmax(want);
    gpuLogits = await engine.logitsAfter(0, [token], pos + 1);
  }
}

/**
 * The backend profile a layout asks for: weights in buffers or textures, the kernels chosen for hardware GPUs
 * (coop GEMV, split attention, workgroup-wide gate and norms) or for CPU software GPUs, norms into a row texture.
 */
function backendOf(
  weightStorage: WeightStorage,
  gpuKernels: boolean,
  normsToTexture = false,
): Partial<BackendProfile> {
  return { family: gpuKernels ? "hardware" : "software", weightStorage, normsToTexture };
}

const TOL: Record<DType, { atol: number; rtol: number }> = {
  F32: { atol: 2e-4, rtol: 2e-4 },
  F16: { atol: 1e-3, rtol: 1e-3 },
  BF16: { atol: 1e-3, rtol: 1e-3 },
};

for (const family of await families()) {
  for (const dtype of ["F32", "F16", "BF16"] as DType[]) {
    Deno.test(`engine (${family}, ${dtype}): logits match the reference over prefill + 16 decode steps`, async () => {
      const dir = await demo(`${dtype}`, { dtype });
      const ck = await openCheckpoint(dir);
      // Both weight layouts: storage buffers and textures, RoPE and the KV write in the q/k/v matmul's epilogue
      // (q and k rows in rotation pairs) or, where the layout cannot have it, a kernel of their own; buffers
      // with the kernels chosen for hardware GPUs (split attention); and textures with each one-row RMSNorm
      // run once into a row texture the matmuls read (as wide models do). Prompt steps of 5 rows take the
      // GEMV kernels; of 16, the GEMMs (more than 8 rows).
      const layouts = [
        ["buffer", false, false, true, 5],
        ["buffer", false, false, false, 5],
        ["texture", false, false, true, 5],
        ["texture", false, false, false, 5],
        ["buffer", true, false, true, 5],
        ["buffer", true, false, true, 16],
        ["buffer", true, false, false, 16],
        ["texture", false, true, true, 5],
      ] as const;
      for (const [storage, gpuKernels, normTextures, ropePairs, maxRows] of layouts) {
        const engine = await Engine.load(await testGpu(family), ck, {
          maxRows,
          backend: backendOf(storage, gpuKernels, normTextures),
          ropePairs,
        });
        assertEquals(engine.weights.ropePairs, ropePairs, `${storage} rope pairs`);
        assertEquals(engine.forward.normsToTexture, normTextures, "norms into a row texture");
        // 11 prompt tokens in chunks of 5 (prefill spans several steps) or in one step.
        const prompt = [3, 17, 999, 0, 512, 42, 42, 7, 100, 200, 300];
        await compareLogits(engine, await ReferenceModel.load(ck), prompt, TOL[dtype]);
      }
    });
  }

  Deno.test(`engine (${family}): an f16 and an f32 KV cache, each against its reference, both kernel families`, async () => {
    const ck = await openCheckpoint(await demo("kv", { dtype: "F32" }));
    const gpu = await testGpu(family);
    // The profile's own choice: f16 where the device has shader-f16 (the fast family), f32 without.
    const auto = await Engine.load(gpu, ck, { maxRows: 5 });
    assertEquals(auto.backend.kvCache, gpu.hasF16 ? "f16" : "f32", "default KV cache type");
    const prompt = [3, 17, 999, 0, 512, 42, 42, 7, 100, 200, 300];
    for (const gpuKernels of [false, true]) {
      for (const kvCache of ["f16", "f32"] as const) {
        // Serial attention (software family) or split + the plain kernel (hardware: 16-row prompt steps).
        const engine = await Engine.load(gpu, ck, {
          maxRows: gpuKernels ? 16 : 5,
          backend: backendOf("buffer", gpuKernels),
          kvCache,
        });
        assertEquals([engine.backend.kvCache, engine.kv.dtype], [kvCache, kvCache]);
        assertEquals(engine.kv.bytes, 2 * 2 * engine.context * 2 * 16 * (kvCache === "f16" ? 2 : 4));
        await compareLogits(engine, await ReferenceModel.load(ck), prompt, TOL.F32);
      }
    }
  });

  Deno.test(`engine (${family}): sharded checkpoint, tensors split across bindings, GQA 4:1, untied head`, async () => {
    const dir = await demo("sharded", {
      shards: 3,
      heads: 8,
      kvHeads: 2,
      headDim: 8,
      tieEmbeddings: false,
      dtype: "BF16",
    });
    const ck = await openCheckpoint(dir);
    // 16 KiB per binding: embedding, LM head and MLP matrices all split into several parts.
    const engine = await Engine.load(await testGpu(family), ck, { maxBindingBytes: 16 * 1024 });
    if (engine.weights.embed.parts.length < 3) {
      throw new Error("expected the embedding split across bindings");
    }
    await compareLogits(engine, await ReferenceModel.load(ck), [1, 2, 3, 4], TOL.BF16);
  });

  Deno.test(`engine (${family}): --quant q8 / q4 match the reference on the quantized weights`, async () => {
    // Untied head (quantized too), K = 64 and 96 (whole blocks) and every kernel layout; x in floats
    // (quantizedX off) to compare within TOL.BF16, then q4 as software GPUs run it (x quantized to int8 blocks).
    const ck = await openCheckpoint(await demo("quant", { tieEmbeddings: false, dtype: "BF16" }));
    for (const quant of ["q8", "q4"] as const) {
      const ref = await ReferenceModel.load(ck, { quant });
      for (
        const [storage, gpuKernels] of [["buffer", false], ["texture", false], ["buffer", true]] as const
      ) {
        const engine = await Engine.load(await testGpu(family), ck, {
          maxRows: 5,
          backend: { ...backendOf(storage, gpuKernels), quantizedX: false },
          quant,
        });
        assertEquals(engine.weights.lmHead.quant, quant);
        await compareLogits(engine, ref, [3, 17, 999, 0, 512, 42, 42, 7], TOL.BF16);
      }
    }
    for (const quant of ["q8", "q4"] as const) {
      const engine = await Engine.load(await testGpu(family), ck, {
        maxRows: 5,
        backend: { ...backendOf("texture", false), quantizedX: true },
        quant,
      });
      await compareQuantizedX(engine, ck, 17, quant);
      // Norms into a row texture: the norm writes x's int8 blocks too, and the matmuls after it read those.
      const folded = await Engine.load(await testGpu(family), ck, {
        maxRows: 5,
        backend: { ...backendOf("texture", false, true), quantizedX: true },
        quant,
      });
      ok(folded.forward.state.xq?.format === quant, "the norm writes quantized x");
      await compareQuantizedX(folded, ck, 17, quant);
    }
    // A tied head: a quantized copy of the embedding, whose gather keeps the checkpoint's values.
    const tied = await openCheckpoint(await demo("quant-tied", { tieEmbeddings: true, dtype: "BF16" }));
    const tiedRef = await ReferenceModel.load(tied, { quant: "q8" });
    for (const storage of ["buffer", "texture"] as const) {
      const engine = await Engine.load(await testGpu(family), tied, {
        maxRows: 5,
        backend: { ...backendOf(storage, false), quantizedX: false },
        quant: "q8",
      });
      ok(engine.weights.lmHead.quant === "q8" && engine.weights.embed.quant === null, storage);
      await compareLogits(engine, tiedRef, [3, 17, 999, 0, 512, 42], TOL.BF16);
    }
  });

  Deno.test(`engine (${family}): stories260K reproduces its golden greedy ids`, async () => {
    const golden = JSON.parse(await Deno.readTextFile(`${STORIES}/golden.json`));
    const model = await Model.load(STORIES, { gpu: await testGpu(family), progress: false });
    const { tokens, summary } = await model.generate("", { maxTokens: golden.greedy_ids.length }).collect();
    assertEquals(summary.promptIds, golden.prompt_ids);
    assertEquals(tokens.map((t) => t.id), golden.greedy_ids);
    assertEquals(summary.text, golden.greedy_text);
    assertEquals(tokens.every((t) => t.layers === 5), true);
  });

  Deno.test(`engine (${family}): the hardware kernel family reproduces the golden ids, sampling on the GPU`, async () => {
    // Coop GEMV, split attention, workgroup-wide norms and the sampler's many-block passes, on this adapter.
    const golden = JSON.parse(await Deno.readTextFile(`${STORIES}/golden.json`));
    const model = await Model.load(STORIES, {
      gpu: await testGpu(family),
      progress: false,
      backend: { family: "hardware" },
    });
    assertEquals(model.engine.backend.bufferGemv, "coop");
    assertEquals(model.engine.backend.attention, "split");
    const { tokens, summary } = await model.generate("", { maxTokens: golden.greedy_ids.length }).collect();
    assertEquals(tokens.map((t) => t.id), golden.greedy_ids);
    assertEquals(summary.text, golden.greedy_text);
  });
}

/** Layouts a Qwen model runs in: [weights, kernels for hardware GPUs, norms into a row texture, rows per step]. */
const QWEN_LAYOUTS = [
  ["buffer", false, false, 5],
  ["texture", false, false, 5],
  ["buffer", true, false, 5],
  ["buffer", true, false, 16],
  ["texture", false, true, 5],
] as const;

/** A Qwen demo against the reference in every layout: never in rotation pairs (heads are normed or biased). */
async function compareQwen(family: "plain" | "fast", dir: string, tol: { atol: number; rtol: number }) {
  const ck = await openCheckpoint(dir);
  const ref = await ReferenceModel.load(ck);
  for (const [storage, gpuKernels, normTextures, maxRows] of QWEN_LAYOUTS) {
    const engine = await Engine.load(await testGpu(family), ck, {
      maxRows,
      backend: backendOf(storage, gpuKernels, normTextures),
    });
    assertEquals(engine.weights.ropePairs, false, "q/k norms or biases: RoPE in a kernel of its own");
    await compareLogits(engine, ref, [3, 17, 999, 0, 512, 42, 42, 7, 100, 200, 300], tol);
  }
}

for (const family of await families()) {
  for (const dtype of ["F32", "BF16"] as DType[]) {
    Deno.test(`engine (${family}, ${dtype}): Qwen3 (q/k norms, head_dim ≠ hidden / heads, tied head) matches the reference`, async () => {
      // head_dim 24: q is 96 wide on a hidden size of 64; no lm_head tensor, the embedding is the head.
      const dir = await demo(`qwen3-${dtype}`, { arch: "qwen3", dtype, headDim: 24, tieEmbeddings: true });
      const ck = await openCheckpoint(dir);
      assertEquals([ck.config.qkNorm, ck.tensors.has("lm_head.weight")], [true, false]);
      await compareQwen(family, dir, TOL[dtype]);
    });
  }

  Deno.test(`engine (${family}): Qwen2 (q/k/v biases, untied head, GQA 4:1) matches the reference`, async () => {
    const dir = await demo("qwen2", {
      arch: "qwen2",
      dtype: "BF16",
      heads: 8,
      kvHeads: 2,
      headDim: 12,
      tieEmbeddings: false,
    });
    assertEquals((await openCheckpoint(dir)).config.attentionBias, true);
    await compareQwen(family, dir, TOL.BF16);
  });
}

Deno.test("generation: every window depth gives the same tokens, greedy and seeded (stories260K)", async () => {
  const model = await Model.load(STORIES, { gpu: await testGpu("fast"), progress: false });
  for (const sampling of [{ temperature: 0 }, { temperature: 0.9, topP: 0.9, topK: 40, seed: 123 }]) {
    const outputs = [];
    for (const window of [1, 2, 4, 16, "auto"] as const) {
      const { tokens, summary } = await model.generate("Once upon a time", {
        maxTokens: 37,
        window,
        ...sampling,
      }).collect();
      outputs.push({ ids: tokens.map((t) => t.id), text: summary.text, layers: tokens.map((t) => t.layers) });
    }
    for (const o of outputs.slice(1)) assertEquals(o, outputs[0]);
  }
});

Deno.test("generation: no GPU object is created while tokens stream, even at a deeper window than before", async () => {
  const model = await Model.load(STORIES, { gpu: await testGpu("fast"), progress: false });
  await model.generate("Once upon a time", { maxTokens: 20, window: 2 }).collect();
  const created = await objectsCreatedWhileStreaming(model.engine.gpu.device, async (streaming) => {
    // The automatic window deepens after 8 tokens, past what the first generation ever had in flight; then
    // an explicit window deeper still.
    for (const window of ["auto", 40] as const) {
      for await (const _ of model.generate("Once upon a time", { maxTokens: 60, window, ignoreEos: true })) {
        streaming(true);
      }
      streaming(false);
    }
  });
  assertEquals(created, [], "GPU objects created after the first token");
});

Deno.test("generation: stops are exact — max tokens, stop string across tokens, eos, and the next turn", async () => {
  const model = await Model.load(STORIES, { gpu: await testGpu("fast"), progress: false, slots: 2 });
  const full = await model.generate("Once upon a time", { maxTokens: 40, window: 1 }).collect();
  // A stop string that spans two tokens ends the text right before it, whatever the window.
  const words = full.summary.text.split(" ");
  const stop = `${words[5]} ${words[6]}`;
  const expected = full.summary.text.slice(0, full.summary.text.indexOf(stop));
  for (const window of [1, 4, 16]) {
    const r = await model.generate("Once upon a time", { maxTokens: 40, window, stop: [stop] }).collect();
    assertEquals(r.summary.stopReason, "stop");
    assertEquals(r.summary.text, expected);
    const m = await model.generate("Once upon a time", { maxTokens: 7, window }).collect();
    assertEquals(m.tokens.map((t) => t.id), full.tokens.slice(0, 7).map((t) => t.id));
    assertEquals(m.summary.stopReason, "max_tokens");
  }
  // A session continued after an overrun gives what a fresh run over the same ids gives.
  for (const window of [1, 16]) {
    const s = model.newSession();
    await model.generate("Once upon a time", { maxTokens: 5, window }, s).collect();
    const turn2 = [...s.tokens, 261, 378];
    const cont = await model.generate({ ids: turn2 }, { maxTokens: 12, window }, s).collect();
    assertEquals(cont.summary.reusedTokens > 0, true);
    const fresh = await model.generate({ ids: turn2 }, { maxTokens: 12, window: 1 }).collect();
    assertEquals(cont.tokens.map((t) => t.id), fresh.tokens.map((t) => t.id));
    model.closeSession(s);
  }
});

Deno.test("generation: a prompt longer than the context is refused with the numbers", async () => {
  const model = await Model.load(STORIES, { gpu: await testGpu("plain"), progress: false, context: 16 });
  const err = await model.generate({ ids: Array(20).fill(5) }).collect().catch((e) => e);
  assertEquals(err.name, "InputError");
  assertEquals(/20 tokens.*context holds 16/.test(err.message), true);
  const r = await model.generate({ ids: [1, 5, 6] }, { maxTokens: 100 }).collect();
  assertEquals(r.summary.stopReason, "context");
  assertEquals(r.summary.generatedTokens, 13);
});

Deno.test("generation: an abort stops at the next token and keeps what was generated", async () => {
  const model = await Model.load(STORIES, { gpu: await testGpu("fast"), progress: false });
  const full = await model.generate("Once upon a time", { maxTokens: 30 }).collect();
  // Window 1 has no step in flight when the abort comes: the one that brings the next token is still made.
  for (const window of [4, 1]) {
    const ctrl = new AbortController();
    const ids: number[] = [];
    const gen = model.generate("Once upon a time", { maxTokens: 30, signal: ctrl.signal, window });
    for await (const t of gen) {
      ids.push(t.id);
      if (ids.length === 5) ctrl.abort();
    }
    const s = await gen.summary;
    assertEquals(s.stopReason, "aborted");
    assertEquals(ids, full.tokens.slice(0, ids.length).map((t) => t.id));
    assertEquals(ids.length, 6);
  }
});
