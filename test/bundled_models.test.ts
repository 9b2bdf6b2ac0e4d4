/**
 * The models trained here and shipped in models/ (models/README.md): flexidepth-tiny is the default every command
 * uses without --model, and adapts its depth to the task as the paper's models do; dmtd-tiny decodes on its
 * cycle. These run the committed files, so a change that breaks loading them, or a rebuild that loses what they
 * show, fails here.
 */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { BUNDLED_MODEL } from "../src/cli/resolve.ts";
import { Model } from "../src/generation/model.ts";
import { BUNDLED_PARAGRAPHS, integerList } from "../src/experiment/inputs.ts";
import { buildPrompt, taskById } from "../src/experiment/tasks.ts";
import { testGpu } from "./harness.ts";
import { runCli } from "./cli_harness.ts";

const DMTD_MODEL = new URL("../models/dmtd-tiny", import.meta.url).pathname;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Mean layers per generated token over the first `samples` inputs of an experiment task, greedy. */
async function meanLayers(model: Model, task: string, samples: number): Promise<number> {
  const t = taskById(task), per: number[] = [];
  for (let i = 0; i < samples; i++) {
    const input = t.kind === "text" ? BUNDLED_PARAGRAPHS[i] : integerList(0, i);
    const r = await model.generate(buildPrompt(t, input, false).input, { maxTokens: 32 }).collect();
    per.push(...r.tokens.map((token) => token.layers));
  }
  return mean(per);
}

Deno.test("bundled flexidepth-tiny: the default model; lists of numbers skip more layers than prose", async () => {
  const cli = await runCli(["run", "Once upon a time", "--max-tokens", "8", "--format", "jsonl"]);
  assertEquals(cli.code, 0, cli.stderr);
  const header = JSON.parse(cli.stdout.split("\n")[0]);
  assertEquals(header.model, BUNDLED_MODEL);
  ok(!/demo model/.test(cli.stderr), cli.stderr);

  const model = await Model.load(BUNDLED_MODEL, { gpu: await testGpu("fast"), progress: false });
  const repeat = await meanLayers(model, "repeat", 2);
  const prose = await meanLayers(model, "continue", 2);
  // The experiment on this model (its card): repeat, sum, product ~4.5 of 8 layers, copy and continue ~7.7.
  ok(repeat + 1 < prose, `repeat ${repeat.toFixed(2)} layers per token, continue ${prose.toFixed(2)}`);
  ok(repeat >= 4 && prose <= 8, `within the routed range: ${repeat}, ${prose}`);
});

Deno.test("bundled dmtd-tiny: each cycle's head runs all 8 layers, its other τ − 1 tokens the last 2", async () => {
  const model = await Model.load(DMTD_MODEL, { gpu: await testGpu("fast"), progress: false });
  const r = await model.generate("Once upon a time", { maxTokens: 12, dmtd: { cycle: 4 }, ignoreEos: true })
    .collect();
  // The prompt's last position runs every layer and gives the first token; then the cycles.
  assertEquals(r.tokens.map((t) => t.layers), [8, 8, 2, 2, 2, 8, 2, 2, 2, 8, 2, 2]);
  ok(/[a-z]{3}/.test(r.summary.text), r.summary.text);
});
