/**
 * Decode ms/token after a long prompt with an f16 and an f32 KV cache, alternating the two engines in one
 * process (best of --repeat rounds: a shared machine adds noise, never speed). Default: the demo model,
 * a 1024-token prompt (or the most its context holds), 32 decoded tokens.
 *
 *   deno run --allow-all bench/kv_cache.ts [--model DIR] [--prompt N] [--tokens N] [--repeat N]
 */

import { parseArgs } from "node:util";
import { openCheckpoint } from "../src/model/checkpoint.ts";
import { ensureDefaultDemoModel } from "../src/model/demo.ts";
import { Model } from "../src/generation/model.ts";
import type { KvDtype } from "../src/gpu/profile.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string" },
    prompt: { type: "string" },
    tokens: { type: "string" },
    repeat: { type: "string" },
  },
});

const ck = await openCheckpoint(flags.model ?? await ensureDefaultDemoModel());
const tokens = Number(flags.tokens ?? 32), repeat = Number(flags.repeat ?? 3);
const promptLen = Math.min(Number(flags.prompt ?? 1024), ck.config.maxPositions - tokens - 1);
const context = promptLen + tokens + 1;
const models = new Map<KvDtype, Model>();
for (const kv of ["f16", "f32"] as const) {
  models.set(kv, await Model.fromCheckpoint(ck, { kvCache: kv, context, progress: false, maxRows: 128 }));
}
const vocab = ck.config.vocabSize;
const prompt = Array.from({ length: promptLen }, (_, i) => 1 + ((i * 7919) % (vocab - 1)));
const best = new Map<KvDtype, number>();
for (let round = 0; round <= repeat; round++) {
  for (const [kv, model] of models) {
    const r = await model.generate({ ids: prompt }, { maxTokens: tokens }).collect();
    const ms = 1000 / r.summary.decodeTokensPerSec;
    if (round > 0) best.set(kv, Math.min(best.get(kv) ?? Infinity, ms)); // round 0 warms up
  }
}
const first = models.get("f16")!.engine;
console.log(`${ck.dir}: ${promptLen}-token prompt, ${tokens} decoded tokens, best of ${repeat}`);
console.log(`adapter family: ${first.backend.family}, attention: ${first.backend.attention}`);
for (const [kv, model] of models) {
  const ms = best.get(kv)!;
  console.log(
    `  ${kv} KV cache (${(model.engine.kv.bytes / 2 ** 20).toFixed(1)} MiB): ${ms.toFixed(2)} ms/token`,
  );
}
console.log(`  f32 / f16: ${(best.get("f32")! / best.get("f16")!).toFixed(3)}×`);
