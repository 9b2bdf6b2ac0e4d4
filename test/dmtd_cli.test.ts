/**
 * A DMTD model through the CLI: `run` (heads, layer counts and the summary's cycle and refill rows; --cycle),
 * `chat` (the second turn reuses the first's cache), `batch` and `experiment` (--cycle in its run.json).
 */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { writeDemoCheckpoint } from "../src/model/demo.ts";
import { runCli } from "./cli_harness.ts";
import { tmp } from "./dmtd_demo.ts";

/** `run --raw --format jsonl` on the model, `maxTokens` at most; `rest`: more options, then the prompt. */
const runJsonl = (dir: string, maxTokens: string, ...rest: string[]) =>
  runCli(["run", "--model", dir, "--raw", "--format", "jsonl", "--max-tokens", maxTokens, ...rest]);

/** `run`: the tokens' heads and layer counts, the summary's cycle and refill rows; --cycle sets τ. */
async function checkRun(dir: string): Promise<void> {
  const run = await runJsonl(dir, "8", "hello");
  assertEquals(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const tokens = lines.filter((l) => l.id !== undefined);
  assertEquals(tokens.map((t) => t.head), [true, true, false, false, true, false, false, true]);
  assertEquals(tokens.map((t) => t.layers), [4, 4, 1, 1, 4, 1, 1, 4]);
  const summary = lines.at(-1);
  assertEquals([summary.cycle, summary.refill_rows], [3, 7]);
  const cycled = await runJsonl(dir, "4", "--cycle", "2", "hi");
  assertEquals(JSON.parse(cycled.stdout.trim().split("\n").at(-1)!).cycle, 2);
}

/** `chat`: two turns, the second reusing the first's cache. */
async function checkChat(dir: string): Promise<void> {
  const chat = await runCli(
    ["chat", "--model", dir, "--format", "jsonl", "--max-tokens", "5"],
    "first\nsecond\n",
  );
  assertEquals(chat.code, 0, chat.stderr);
  const turns = chat.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((l) => l.type === "summary");
  assertEquals(turns.length, 2);
  ok(turns[1].reused_tokens > 0, "the second turn reuses the first's cache");
}

/** `batch`: each prompt's tokens with their heads. */
async function checkBatch(dir: string): Promise<void> {
  await Deno.writeTextFile(`${tmp}/prompts.txt`, "one\ntwo\n");
  const batch = await runCli([
    "batch",
    `${tmp}/prompts.txt`,
    "-o",
    `${tmp}/out.jsonl`,
    "--model",
    dir,
    "--max-tokens",
    "4",
  ]);
  assertEquals(batch.code, 0, batch.stderr);
  const results = (await Deno.readTextFile(`${tmp}/out.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(results.map((r) => r.tokens.map((t: { head: boolean }) => t.head)), [[
    true,
    true,
    false,
    false,
  ], [true, true, false, false]]);
}

/** `experiment`: --cycle in its run.json. */
async function checkExperiment(dir: string): Promise<void> {
  const exp = await runCli([
    "experiment",
    "math",
    "-o",
    `${tmp}/exp`,
    "--model",
    dir,
    "-n",
    "1",
    "--max-tokens",
    "6",
    "--cycle",
    "2",
  ]);
  assertEquals(exp.code, 0, exp.stderr);
  const run1 = JSON.parse(await Deno.readTextFile(`${tmp}/exp/run.json`));
  assertEquals(run1.cycle, 2);
}

Deno.test("dmtd: run, chat, batch and experiment on a DMTD model (the CLI)", async () => {
  // A Qwen3 DMTD demo with the real Qwen3 tokenizer's vocabulary (its prompts tokenize inside it).
  const dir = `${tmp}/cli`;
  await writeDemoCheckpoint(dir, {
    arch: "qwen3",
    seed: 5,
    layers: 4,
    hidden: 64,
    dmtd: { thinking: 3, cycle: 3 },
  });
  await checkRun(dir);
  await checkChat(dir);
  await checkBatch(dir);
  await checkExperiment(dir);
});
