/**
 * The GPU scorer (src/eval/gpu_scorer.ts) against the TypeScript reference: log-likelihoods of continuations
 * after shared contexts, their greedy flags and per-token layers — plain, FlexiDepth-routed and DMTD models,
 * both kernel families.
 */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { families, testGpu } from "./harness.ts";
import { ReferenceModel } from "./reference.ts";
import { oracleLogits, type Role } from "./dmtd_reference.ts";
import { writeDemoCheckpoint } from "../src/model/demo.ts";
import type { DemoOptions } from "../src/model/demo_config.ts";
import { openCheckpoint } from "../src/model/checkpoint.ts";
import { Model } from "../src/generation/model.ts";
import { createGpuScorer, SCORER_LOAD } from "../src/eval/gpu_scorer.ts";
import type { EvalMode, LoglikelihoodRequest } from "../src/eval/scorer.ts";
import { referenceLogprob } from "../src/ops/sample/reference.ts";

const tmp = await Deno.makeTempDir({ prefix: "flexidepth-eval-scorer-" });
const small = {
  seed: 4,
  layers: 4,
  hidden: 64,
  heads: 4,
  kvHeads: 2,
  headDim: 16,
  intermediate: 96,
  vocabSize: 800,
};

/** Two questions (3 and 2 choices, continuations of 1–9 tokens), and a context scored alone. */
const REQUESTS: LoglikelihoodRequest[] = [
  { context: [1, 40, 41, 42], continuation: [7] },
  { context: [1, 40, 41, 42], continuation: [9, 10, 11, 12, 13, 14, 15, 16, 17] },
  { context: [1, 40, 41, 42], continuation: [300, 5] },
  { context: [1, 77], continuation: [2, 3, 4] },
  { context: [1, 77], continuation: [600, 601, 602, 603] },
  { context: [1], continuation: [33, 34] },
];

/** The reference's log-likelihoods: each continuation token's log-softmax after everything before it. */
function referenceScores(ref: ReferenceModel, mode: EvalMode, roles?: (ctx: number, len: number) => Role[]) {
  return REQUESTS.map(({ context, continuation }) => {
    const seq = [...context, ...continuation];
    let logprob = 0, greedy = true;
    const layers: number[] = [];
    const cache = ref.newCache();
    let step = ref.step(seq[0], 0, cache, { fullDepth: mode.fullDepth, threshold: mode.threshold });
    for (let p = 1; p < seq.length; p++) {
      const logits = roles ? oracleLogits(ref, seq.slice(0, p), roles(context.length, p)) : step.logits;
      if (p >= context.length) {
        const s = referenceLogprob(logits, seq[p]);
        logprob += s.logprob;
        greedy &&= s.greedy;
        layers.push(step.layers);
      }
      step = ref.step(seq[p], p, cache, { fullDepth: mode.fullDepth, threshold: mode.threshold });
    }
    return { logprob, greedy, layers };
  });
}

async function compare(name: string, opts: DemoOptions, family: "plain" | "fast", mode: EvalMode) {
  const dir = `${tmp}/${name}-${family}`;
  await writeDemoCheckpoint(dir, { ...small, ...opts });
  const ref = await ReferenceModel.load(await openCheckpoint(dir));
  const model = await Model.load(dir, {
    gpu: await testGpu(family),
    progress: false,
    ...SCORER_LOAD,
    maxRows: 8,
  });
  ref.kvF16 = model.engine.backend.kvCache === "f16"; // the reference rounds K/V as the cache holds them
  const got = await createGpuScorer(model).loglikelihood(REQUESTS, mode);
  const want = referenceScores(ref, mode);
  got.forEach((g, i) => {
    ok(
      Math.abs(g.logprob - want[i].logprob) < 2e-3 * want[i].layers.length,
      `${name} ${i}: ${g.logprob} vs ${want[i].logprob}`,
    );
    assertEquals(g.greedy, want[i].greedy, `${name} ${i}: greedy`);
    assertEquals(g.layers.length, REQUESTS[i].continuation.length);
  });
  return { got, want };
}

for (const family of await families()) {
  Deno.test(`eval scorer (${family}): log-likelihoods of a plain model match the reference`, async () => {
    const { got } = await compare("plain", {}, family, { name: "full", fullDepth: true });
    ok(got.every((g) => g.layers.every((l) => l === 4)));
  });

  Deno.test(`eval scorer (${family}): a routed model's scores and per-token layers match the reference`, async () => {
    const mode = { name: "routed", fullDepth: false, threshold: 0.5 };
    const { got, want } = await compare("routed", { routingLayers: [1, 2, 3], routerScale: 8 }, family, mode);
    got.forEach((g, i) => assertEquals(g.layers, want[i].layers, `request ${i}: layers`));
    const all = got.flatMap((g) => g.layers);
    ok(new Set(all).size > 1, "tokens should take different depths");
  });
}

Deno.test("eval scorer: a DMTD mode teacher-forces the cycle (the oracle's logits, heads' and others' layers)", async () => {
  const cycle = 3;
  const dir = `${tmp}/dmtd`;
  await writeDemoCheckpoint(dir, { ...small, dmtd: { thinking: 3, cycle: 4 } });
  const ref = await ReferenceModel.load(await openCheckpoint(dir));
  const model = await Model.load(dir, {
    gpu: await testGpu("fast"),
    progress: false,
    ...SCORER_LOAD,
    maxRows: 8,
  });
  ref.kvF16 = model.engine.backend.kvCache === "f16"; // the reference rounds K/V as the cache holds them
  const got = await createGpuScorer(model).loglikelihood(REQUESTS, {
    name: "cycle:3",
    fullDepth: false,
    cycle,
  });
  // Position p of the sequence: a context row, or continuation token g_j fed at P + j (a head when j ≡ 0).
  const roles = (P: number, n: number): Role[] =>
    Array.from({ length: n }, (_, p) => p < P ? "prompt" : (p - P) % cycle === 0 ? "head" : "other");
  const want = referenceScores(ref, { name: "full", fullDepth: true }, roles);
  got.forEach((g, i) => {
    ok(
      Math.abs(g.logprob - want[i].logprob) < 2e-3 * g.layers.length,
      `${i}: ${g.logprob} vs ${want[i].logprob}`,
    );
    assertEquals(g.greedy, want[i].greedy, `${i}: greedy`);
    // Token i is scored by the row at P − 1 + i: the context's, or g_{i−1}'s (every layer at a head).
    const layers = REQUESTS[i].continuation.map((_, k) => k === 0 || (k - 1) % cycle === 0 ? 4 : 1);
    assertEquals(g.layers, layers, `${i}: layers`);
  });
});
