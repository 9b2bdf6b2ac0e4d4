/**
 * What a DMTD step runs on the GPU: a non-head step dispatches no thinking-layer work and a head runs both
 * groups; every window depth gives the same tokens, heads and layer counts following the cycle; no GPU object
 * is created while tokens stream.
 */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { objectsCreatedWhileStreaming, testGpu } from "./harness.ts";
import { Model } from "../src/generation/model.ts";
import type { ComputeRecorder } from "../src/gpu/profiler.ts";
import { dmtdDemo } from "./dmtd_demo.ts";

/** Labels of the matmul dispatches a recorded step makes (matmuls name their matrix). */
function matmulLabels(): { pass: ComputeRecorder; labels: string[] } {
  const labels: string[] = [];
  const pass = {
    setPipeline() {},
    setBindGroup(_: number, g: GPUBindGroup | null) {
      if (g) labels.push(g.label);
    },
    dispatchWorkgroups() {},
  } as unknown as ComputeRecorder;
  return { pass, labels };
}

Deno.test("dmtd: a non-head step dispatches no thinking-layer work; a head runs both groups", async () => {
  const model = await Model.load(await dmtdDemo("dispatch"), { gpu: await testGpu("fast"), progress: false });
  const fwd = model.engine.forward;
  const thinking = (labels: string[]) => labels.filter((l) => /layers\.[0-2]\./.test(l));
  const decoding = (labels: string[]) => labels.filter((l) => /layers\.3\./.test(l));
  // Records a step of `rows` decoding rows over `shape` (DmtdShape's fields in order) and returns its labels.
  const step = (rows: number, [thinkingRows, thinkingOutRows, mixRows]: number[], only = false) => {
    const m = matmulLabels();
    const shape = { thinkingRows, thinkingOutRows, fromHistory: !only && thinkingRows > 0, mixRows };
    fwd.encode(m.pass, rows, only ? 0 : 1, "sample", { ...shape, thinkingOnly: only });
    return m.labels;
  };
  const none = step(1, [0, 0, 0]);
  assertEquals(thinking(none), []);
  ok(decoding(none).length > 0, "the decoding layers run");
  const head = step(1, [4, 1, 1]);
  ok(thinking(head).length > 0 && decoding(head).length > 0, "a head runs every layer");
  // A refill before a prompt reads no thinking output: the last thinking layer only writes its K/V.
  const only = step(4, [4, 0, 0], true);
  const last = only.filter((l) => /layers\.2\./.test(l));
  assertEquals(
    last.map((l) => l.replace(/^\S+ /, "")),
    ["model.layers.2.self_attn.qkv"],
    "layer 2: K/V only",
  );
  ok(only.some((l) => /layers\.1\.mlp/.test(l)), "the layers before it run whole");
  assertEquals(decoding(only), []);
});

Deno.test("dmtd: every window depth gives the same tokens; heads and layer counts follow the cycle", async () => {
  const model = await Model.load(await dmtdDemo("windows"), { gpu: await testGpu("fast"), progress: false });
  const prompt = { ids: [5, 77, 300, 12, 599] };
  const runs = [];
  for (const window of [1, 3, "auto"] as const) {
    runs.push(await model.generate(prompt, { maxTokens: 14, window }).collect());
  }
  for (const r of runs.slice(1)) assertEquals(r.tokens.map((t) => t.id), runs[0].tokens.map((t) => t.id));
  // g0 comes from the prompt's pass, g1 from the head at P, then τ − 1 = 3 decoding-only tokens per cycle.
  const heads = runs[0].tokens.map((t) => t.head);
  assertEquals(heads, [
    true,
    true,
    false,
    false,
    false,
    true,
    false,
    false,
    false,
    true,
    false,
    false,
    false,
    true,
  ]);
  assertEquals(runs[0].tokens.map((t) => t.layers), heads.map((h) => h ? 4 : 1));
  // Heads at P, P + 4, P + 8, P + 12 ran blocks of 1, 4, 4 and 4 rows.
  assertEquals(runs[0].summary.dmtd, { cycle: 4, refillRows: 13 });
  const full = await model.generate(prompt, { maxTokens: 6, fullDepth: true }).collect();
  ok(full.tokens.every((t) => t.layers === 4 && t.head), "full depth: every layer, every token");
  assertEquals(full.summary.dmtd, { cycle: 0, refillRows: 0 });
});

Deno.test("dmtd: no GPU object is created while tokens stream (heads and the steps between)", async () => {
  const model = await Model.load(await dmtdDemo("alloc"), { gpu: await testGpu("fast"), progress: false });
  const prompt = { ids: [5, 77, 300] };
  await model.generate(prompt, { maxTokens: 12, window: 2 }).collect();
  const created = await objectsCreatedWhileStreaming(model.engine.gpu.device, async (streaming) => {
    for (const cycle of [2, 4, 6]) {
      for await (const _ of model.generate(prompt, { maxTokens: 40, ignoreEos: true, dmtd: { cycle } })) {
        streaming(true);
      }
      streaming(false);
    }
  });
  assertEquals(created, [], "GPU objects created after the first token");
});
