/**
 * FlexiDepth routing on the GPU against the TypeScript reference and the released-format golden outputs:
 * routes, gates, layer counts, KV fill of skipped tokens, thresholds, full depth, prefill vs decode.
 */

import type { EngineOptions } from "../src/engine/engine.ts";
import { deepStrictEqual as assertEquals, notDeepStrictEqual, ok } from "node:assert/strict";
import { assertClose, families, testGpu } from "./harness.ts";
import { argmax, ReferenceModel, type RefOptions } from "./reference.ts";
import { writeDemoCheckpoint } from "../src/model/demo.ts";
import { openCheckpoint } from "../src/model/checkpoint.ts";
import { Engine } from "../src/engine/engine.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { type BackendProfile, backendProfile, kernelFamily, prefillRows } from "../src/gpu/profile.ts";
import { Model } from "../src/generation/model.ts";

const SHARED = new URL("../../shared/models/", import.meta.url).pathname;
const FLEXI = `${SHARED}stories260K-flexidepth`;
const BASE = `${SHARED}stories260K`;
const tmp = await Deno.makeTempDir({ prefix: "flexidepth-routing-test-" });

/** A small ddllama demo: 4 layers, the last 3 routed, routers scaled so that tokens both run and skip. */
async function demo(name: string, opts: Record<string, unknown> = {}): Promise<string> {
  const dir = `${tmp}/${name}`;
  await writeDemoCheckpoint(dir, {
    seed: 11,
    layers: 4,
    hidden: 64,
    heads: 4,
    kvHeads: 2,
    headDim: 16,
    intermediate: 96,
    vocabSize: 600,
    routingLayers: [1, 2, 3],
    dtype: "F32",
    ...opts,
  });
  return dir;
}

for (const family of await families()) {
  Deno.test(`flexidepth (${family}): stories260K-flexidepth reproduces its golden ids, token and prompt layer counts`, async () => {
    const golden = JSON.parse(await Deno.readTextFile(`${FLEXI}/golden.json`));
    const model = await Model.load(FLEXI, { gpu: await testGpu(family), progress: false, maxRows: 8 });
    for (const c of golden.cases) {
      const { tokens, summary } = await model.generate({ ids: c.prompt_ids }, {
        maxTokens: c.greedy_ids.length,
      }).collect();
      assertEquals(tokens.map((t) => t.id), c.greedy_ids, `${c.name}: ids`);
      assertEquals(tokens.map((t) => t.layers), c.layers, `${c.name}: layers per token`);
      assertEquals(summary.promptLayers, c.prompt_layers, `${c.name}: prompt layers`);
      for (const t of tokens) assertEquals(t.layers, 2 + t.routes.filter(Boolean).length);
    }
  });

  Deno.test(`flexidepth (${family}): --full-depth on the FlexiDepth checkpoint is the base model`, async () => {
    const golden = JSON.parse(await Deno.readTextFile(`${BASE}/golden.json`));
    const model = await Model.load(FLEXI, { gpu: await testGpu(family), progress: false });
    const { tokens } = await model.generate({ ids: golden.prompt_ids }, {
      maxTokens: golden.greedy_ids.length,
      fullDepth: true,
    }).collect();
    assertEquals(tokens.map((t) => t.id), golden.greedy_ids);
    ok(tokens.every((t) => t.layers === 5 && t.routes.every(Boolean)));
  });
}

/** Checks the engine's layout is the one asked for: texture weights, norms into a row texture, RoPE pairs. */
function checkLayout(engine: Engine, layout: Pick<EngineOptions, "backend" | "quant" | "ropePairs">): void {
  // Norms into a row texture need texture weights (asked for explicitly; a CPU software GPU always has them).
  const textures = engine.weights.layers[0].qkv.storage === "texture";
  const asked = layout.backend ?? {};
  if (asked.weightStorage === "texture" && engine.backend.family === "software") {
    ok(textures, "texture weights as asked");
  }
  ok(
    engine.forward.normsToTexture === (!!asked.normsToTexture && textures),
    "norms into a row texture as asked",
  );
  ok(engine.weights.ropePairs === (layout.ropePairs ?? true), "RoPE in the projections' epilogue as asked");
}

/**
 * How many generated routes differ from the reference's: a route may flip only where the gate sits on the
 * threshold within rounding.
 */
function routeFlips(
  tokens: { routes: boolean[] }[],
  routes: boolean[][],
  gates: number[][],
  threshold: number,
): number {
  let flips = 0;
  tokens.forEach((t, i) =>
    t.routes.forEach((r, k) => {
      if (r !== routes[i][k]) {
        flips++;
        ok(Math.abs(gates[i][k] - threshold) < 1e-5, `route flip far from the threshold at ${i}/${k}`);
      }
    })
  );
  return flips;
}

/** Runs a prompt then greedy decode steps on the GPU and the reference, comparing routes and logits. */
async function compareRouted(
  dir: string,
  family: "plain" | "fast",
  refOpts: RefOptions,
  maxRows = 4,
  layout: Pick<EngineOptions, "backend" | "quant" | "ropePairs"> = {},
) {
  const ck = await openCheckpoint(dir);
  const ref = await ReferenceModel.load(ck, { quant: layout.quant });
  const engine = await Engine.load(await testGpu(family), ck, { maxRows, ...layout });
  // The reference rounds K/V to f16 where the engine's cache holds f16 (the fast family's default here).
  ref.kvF16 = engine.backend.kvCache === "f16";
  // f16 K/V: where the GPU's and the reference's f32 K straddle an f16 rounding edge they round one f16 step
  // (≤ 2^-10 relative) apart; Qwen's q/k-normed heads showed 1.3× the f32 bound (4.1e-4 at 0.0437).
  const tol = engine.backend.kvCache === "f16" ? { atol: 1e-3, rtol: 1e-3 } : { atol: 3e-4, rtol: 3e-4 };
  engine.forward.routing = { threshold: refOpts.threshold ?? 0.5, fullDepth: refOpts.fullDepth ?? false };
  checkLayout(engine, layout);
  const model = await Model.load(dir, { gpu: await testGpu(family), progress: false, maxRows, ...layout });
  const prompt = [5, 77, 300, 12, 599, 42, 8];
  const cache = ref.newCache();
  let step = ref.step(prompt[0], 0, cache, refOpts);
  const promptLayers = [step.layers];
  for (let p = 1; p < prompt.length; p++) {
    step = ref.step(prompt[p], p, cache, refOpts);
    promptLayers.push(step.layers);
  }
  assertClose(
    await engine.logitsAfter(0, prompt, 0),
    step.logits,
    tol,
    "prefill logits",
  );
  const ids: number[] = [], layers: number[] = [], routes: boolean[][] = [], gates: number[][] = [];
  for (let i = 0; i < 12; i++) {
    const id = argmax(step.logits);
    ids.push(id);
    layers.push(step.layers);
    routes.push(step.runs);
    gates.push(step.gates);
    step = ref.step(id, prompt.length + i, cache, refOpts);
    assertClose(
      await engine.logitsAfter(0, [id], prompt.length + i),
      step.logits,
      tol,
      `step ${i}`,
    );
  }
  const gen = await model.generate({ ids: prompt }, {
    maxTokens: 12,
    threshold: refOpts.threshold,
    fullDepth: refOpts.fullDepth,
  }).collect();
  const flips = routeFlips(gen.tokens, routes, gates, refOpts.threshold ?? 0.5);
  if (flips) console.log(`  ${flips} route flips within rounding of the threshold`);
  assertEquals(gen.tokens.map((t) => t.id), ids);
  if (!flips) assertEquals(gen.tokens.map((t) => t.layers), layers);
  assertEquals(gen.summary.promptLayers, promptLayers);
  return { routes, promptLayers };
}

for (const family of await families()) {
  Deno.test(`flexidepth (${family}): mixed routing on a demo ddllama matches the reference (routes, logits, counts)`, async () => {
    // Default weights (textures here), storage buffers, and the kernels chosen for hardware GPUs (split
    // attention, workgroup-wide route gate), RoPE + KV write fused into the projections or as kernels of their
    // own. Then the projections quantized at load (q8 in textures, q4 in buffers): routes follow the quantized
    // hidden states, as the reference on the same quantized weights computes them. And textures with each
    // one-row RMSNorm run once into a row texture (as wide models do), plain and quantized.
    const texture = { normsToTexture: true, weightStorage: "texture" } as const;
    const buffer = { weightStorage: "buffer" } as const;
    const hardware = { weightStorage: "buffer", family: "hardware" } as const;
    const layouts: Pick<EngineOptions, "backend" | "quant" | "ropePairs">[] = [
      {},
      { ropePairs: false },
      { backend: texture },
      { backend: { ...texture, quantizedX: false }, quant: "q4" }, // x in f32: the reference's (engine tests bound XQ)
      { backend: buffer },
      { backend: hardware },
      { backend: hardware, ropePairs: false },
      { backend: { quantizedX: false }, quant: "q8" }, // x in f32 (engine tests check XQ against the reference)
      { backend: hardware, quant: "q4" },
    ];
    for (const layout of layouts) {
      const { routes } = await compareRouted(await demo(`mixed-${family}`), family, {}, 4, layout);
      const flat = routes.flat();
      ok(flat.some((r) => r) && flat.some((r) => !r), "the demo routers should both run and skip");
    }
  });

  Deno.test(`flexidepth (${family}): all kept (threshold 0), all skipped (threshold 1), full depth`, async () => {
    const dir = await demo(`thresholds-${family}`);
    const allKept = await compareRouted(dir, family, { threshold: 0 });
    ok(allKept.routes.flat().every((r) => r));
    const allSkipped = await compareRouted(dir, family, { threshold: 1 });
    ok(allSkipped.routes.flat().every((r) => !r));
    assertEquals(allSkipped.promptLayers.every((l) => l === 1), true);
    await compareRouted(dir, family, { fullDepth: true });
  });
}

for (const family of await families()) {
  Deno.test(`flexidepth (${family}): routers on Qwen3 (q/k norms, head_dim ≠ hidden / heads, tied) and Qwen2 (biases) match the reference`, async () => {
    // RoPE runs in a kernel of its own on these (ropePairs false): on every row's K/V and the kept rows' q, with
    // the heads' norms or biases. Default weights (textures here), buffers with the hardware family's kernels,
    // and the projections quantized at load.
    const hardware = { weightStorage: "buffer", family: "hardware" } as const;
    const layouts: Pick<EngineOptions, "backend" | "quant" | "ropePairs">[] = [
      { ropePairs: false },
      { ropePairs: false, backend: hardware },
      { ropePairs: false, backend: { quantizedX: false }, quant: "q8" },
    ];
    const archs = [["qwen3", { headDim: 24, tieEmbeddings: true }], ["qwen2", {
      tieEmbeddings: false,
    }]] as const;
    for (const [arch, opts] of archs) {
      const dir = await demo(`${arch}-${family}`, { arch, ...opts });
      for (const layout of layouts) {
        const { routes } = await compareRouted(dir, family, {}, 4, layout);
        const flat = routes.flat();
        ok(flat.some((r) => r) && flat.some((r) => !r), `the ${arch} demo routers should both run and skip`);
      }
    }
  });
}

Deno.test("flexidepth: skipped tokens write K/V that later kept tokens attend to", async () => {
  // With threshold 0.5 on the mixed demo, some prompt tokens skip layers that later tokens keep. The GPU
  // must match the reference that writes skipped tokens' K/V, and differ from one that does not.
  const dir = await demo("kvfill");
  const ck = await openCheckpoint(dir);
  const ref = await ReferenceModel.load(ck);
  const engine = await Engine.load(await testGpu("fast"), ck);
  ref.kvF16 = engine.backend.kvCache === "f16";
  const prompt = [5, 77, 300, 12, 599, 42, 8, 9, 10];
  const run = (o: RefOptions) => {
    const cache = ref.newCache();
    let last = ref.step(prompt[0], 0, cache, o);
    const runs = [last.runs];
    for (let p = 1; p < prompt.length; p++) runs.push((last = ref.step(prompt[p], p, cache, o)).runs);
    return { logits: last.logits, runs };
  };
  const right = run({}), wrong = run({ noKvForSkipped: true });
  const skippedThenKept = right.runs.some((r, p) =>
    r.some((kept, k) => !kept && right.runs.slice(p + 1).some((q) => q[k]))
  );
  ok(skippedThenKept, "the prompt should have a skipped token followed by a kept one in the same layer");
  notDeepStrictEqual(Array.from(right.logits), Array.from(wrong.logits));
  const gpu = await engine.logitsAfter(0, prompt, 0);
  assertClose(gpu, right.logits, { atol: 3e-4, rtol: 3e-4 }, "GPU vs reference with K/V of skipped tokens");
});

Deno.test("flexidepth: prefill and decode give the same routes for the same tokens; BF16 gates", async () => {
  const dir = await demo("prefill-decode", { dtype: "BF16" });
  const model = await Model.load(dir, { gpu: await testGpu("fast"), progress: false, maxRows: 16, slots: 2 });
  const gen = await model.generate({ ids: [3, 4, 5] }, { maxTokens: 10 }).collect();
  const all = [...gen.summary.promptIds, ...gen.tokens.map((t) => t.id)];
  // The same sequence as one prefill: position p's layers in prefill = the count of the pass over p.
  const again = await model.generate({ ids: all.slice(0, -1) }, { maxTokens: 1 }).collect();
  const decodeCounts = [...gen.summary.promptLayers.slice(0, -1), ...gen.tokens.map((t) => t.layers)];
  assertEquals(again.summary.promptLayers.slice(0, decodeCounts.length), decodeCounts);
});

Deno.test("flexidepth: a prompt in one-row steps gives the chunked prefill's tokens, routes and layer counts", async () => {
  // Wide models on CPU software GPUs prefill one row per step (engine.ts defaultPrefillRows); 21 tokens run
  // through more steps than the readbacks kept in flight (generate.ts PREFILL_READBACKS).
  const dir = await demo("one-row-prefill");
  const gpu = await testGpu("fast");
  const prompt = Array.from({ length: 21 }, (_, i) => (i * 37 + 5) % 600);
  const runs = [];
  for (const prefillRows of [undefined, 1]) {
    const backend = { oneRowPrompts: prefillRows === 1 };
    const model = await Model.load(dir, { gpu, progress: false, maxRows: 8, backend });
    assertEquals(model.engine.prefillRows, prefillRows ?? 8);
    // The rows of every step, to check the prompt went in the steps asked for.
    const stepRows: number[] = [];
    const submit = model.engine.submitStep.bind(model.engine);
    model.engine.submitStep = (rows, ...rest) => (stepRows.push(rows.length), submit(rows, ...rest));
    runs.push(await model.generate({ ids: prompt }, { maxTokens: 6 }).collect());
    assertEquals(Math.max(...stepRows), prefillRows ?? 8);
  }
  const [chunked, oneRow] = runs;
  assertEquals(oneRow.summary.promptLayers.length, prompt.length);
  assertEquals(oneRow.summary.promptLayers, chunked.summary.promptLayers);
  ok(new Set(chunked.summary.promptLayers).size > 1, "prompt tokens should take different depths");
  assertEquals(
    oneRow.tokens.map((t) => [t.id, t.layers, t.routes]),
    chunked.tokens.map((t) => [t.id, t.layers, t.routes]),
  );
});

Deno.test("flexidepth: one-row prefill by default only for wide models with texture weights on software GPUs", async () => {
  const gpu = await testGpu("fast");
  const config = (hiddenSize: number) => ({ hiddenSize, headDim: 64, vocabSize: 1000 }) as ModelConfig;
  const defaultPrefillRows = (
    cfg: ModelConfig,
    weightStorage: BackendProfile["weightStorage"],
    maxRows: number,
  ) => prefillRows(backendProfile(gpu, cfg, { weightStorage }), maxRows);
  const software = kernelFamily(gpu) === "software";
  assertEquals(defaultPrefillRows(config(2048), "texture", 64), software ? 1 : 64);
  assertEquals(defaultPrefillRows(config(256), "texture", 64), software ? 1 : 64);
  assertEquals(defaultPrefillRows(config(128), "texture", 64), 64);
  assertEquals(defaultPrefillRows(config(2048), "buffer", 64), 64);
});
