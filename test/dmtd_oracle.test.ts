/**
 * DMTD generation on the GPU against the oracle that recomputes everything (test/dmtd_reference.ts):
 * greedy tokens and layer counts on Llama and Qwen3 layouts, several τ and both prompt conventions, full
 * depth as the plain stack, and a chat's second turn that refills the holes the first left.
 */

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { families, testGpu } from "./harness.ts";
import { Model } from "../src/generation/model.ts";
import { openCheckpoint } from "../src/model/checkpoint.ts";
import { argmax, ReferenceModel } from "./reference.ts";
import { oracleGreedy, type Role } from "./dmtd_reference.ts";
import { dmtdDemo } from "./dmtd_demo.ts";

for (const family of await families()) {
  Deno.test(`dmtd (${family}): greedy tokens and layer counts match the oracle that recomputes everything`, async () => {
    // Llama and Qwen3 layouts; τ = 2, 3, 4 over the checkpoint's; the prompt length (5) no multiple of τ; both
    // prompt conventions. Once also with texture weights and every norm of a step of few rows into the row
    // texture that the matmuls read (as wide models have it on software GPUs): refills take gemv_tex_rows XTEX.
    const layouts = [[false, false], [true, false], ...(family === "plain" ? [[true, true]] : [])];
    for (const [qwen3, normsToTexture] of layouts) {
      const dir = await dmtdDemo(`oracle-${family}-${qwen3}`, 3, 4, 4, qwen3);
      const ck = await openCheckpoint(dir);
      const ref = await ReferenceModel.load(ck);
      const backend = normsToTexture ? { weightStorage: "texture", normsToTexture } as const : undefined;
      const model = await Model.load(dir, {
        gpu: await testGpu(family),
        progress: false,
        maxRows: 8,
        backend,
      });
      assertEquals(model.engine.forward.normsToTexture, normsToTexture, "norms into a row texture");
      ref.kvF16 = model.engine.backend.kvCache === "f16"; // the reference rounds K/V as the cache holds them
      const prompt = [5, 77, 300, 12, 599];
      for (const [cycle, prefill] of [[2, "reference"], [3, "plain"], [4, "reference"]] as const) {
        const want = oracleGreedy(ref, prompt, 11, cycle, { prefill });
        const got = await model.generate({ ids: prompt }, { maxTokens: 11, dmtd: { cycle, prefill } })
          .collect();
        const label = `${qwen3 ? "qwen3" : "llama"}${
          normsToTexture ? " norm textures" : ""
        } τ ${cycle} ${prefill}`;
        assertEquals(got.tokens.map((t) => t.id), want.ids, `${label}: tokens`);
        assertEquals(got.tokens.map((t) => t.layers), want.layers, `${label}: layers`);
      }
      // Full depth: the plain stack on the same weights, token after token.
      const cache = ref.newCache();
      let logits: Float32Array = new Float32Array();
      prompt.forEach((t, p) => logits = ref.forward(t, p, cache));
      const plain: number[] = [];
      for (let i = 0; i < 6; i++) {
        plain.push(argmax(logits));
        logits = ref.forward(plain[i], prompt.length + i, cache);
      }
      const full = await model.generate({ ids: prompt }, { maxTokens: 6, fullDepth: true }).collect();
      assertEquals(full.tokens.map((t) => t.id), plain, "full depth = the plain stack");
    }
  });
}

Deno.test("dmtd: a chat's second turn continues exactly (refills the holes the first turn left)", async () => {
  const dir = await dmtdDemo("turns");
  const ref = await ReferenceModel.load(await openCheckpoint(dir));
  const model = await Model.load(dir, { gpu: await testGpu("fast"), progress: false, maxRows: 8 });
  ref.kvF16 = model.engine.backend.kvCache === "f16";
  const session = model.newSession();
  const p1 = [5, 77, 300, 12, 599];
  // 7 tokens: heads at 5 and 9, so positions 10.. have no thinking-layer K/V when the turn ends.
  const turn1 = await model.generate({ ids: p1 }, { maxTokens: 7 }, session).collect();
  const want1 = oracleGreedy(ref, p1, 7, 4);
  assertEquals(turn1.tokens.map((t) => t.id), want1.ids);
  const p2 = [...p1, ...want1.ids, 9, 10];
  const turn2 = await model.generate({ ids: p2 }, { maxTokens: 6 }, session).collect();
  assertEquals(turn2.summary.reusedTokens, p1.length + 6, "every position the first turn fed is reused");
  // The first turn's fed tokens keep their roles; its last token and the new ones are prompt rows.
  const roles: Role[] = [...want1.roles.slice(0, p1.length + 6), "prompt", "prompt", "prompt"];
  const want2 = oracleGreedy(ref, p2, 6, 4, { promptRoles: roles });
  assertEquals(turn2.tokens.map((t) => t.id), want2.ids);
});
