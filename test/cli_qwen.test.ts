/**
 * The CLI on Qwen checkpoints (small demo checkpoints of the Qwen3 and Qwen2 shapes): info describes their
 * heads, norms, biases and tied head; --thinking off opens an empty <think> block in run, chat and batch.
 */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { writeDemoCheckpoint } from "../src/model/demo.ts";
import { assertOneLineError, runCli as cli } from "./cli_harness.ts";
import { cliTempDir, jsonLines, SMALL_DEMO } from "./cli_fixtures.ts";

const tmp = await cliTempDir();

/** A Qwen3 and a FlexiDepth Qwen2 demo checkpoint, in the temporary folder. */
async function writeQwenModels(): Promise<{ qwen3: string; qwen2: string }> {
  // The real Qwen3 vocabulary (ids up to 151668 in the prompt), tied, head_dim 24 on hidden 64 / 4 heads.
  const qwen3 = `${tmp}/qwen3`;
  await writeDemoCheckpoint(qwen3, { ...SMALL_DEMO, arch: "qwen3", headDim: 24, tieEmbeddings: true });
  const qwen2 = `${tmp}/qwen2`;
  await writeDemoCheckpoint(qwen2, { ...SMALL_DEMO, arch: "qwen2", vocabSize: 2000, routingLayers: [1] });
  return { qwen3, qwen2 };
}

/** info, as JSON and as text, on both. */
async function checkInfo(qwen3: string, qwen2: string): Promise<void> {
  const info = async (dir: string) => {
    const r = await cli(["info", "--model", dir, "--json"]);
    assertEquals(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).model;
  };
  const m3 = await info(qwen3), m2 = await info(qwen2);
  assertEquals([
    m3.architecture,
    m3.model_type,
    m3.head_dim,
    m3.qk_norm,
    m3.attention_bias,
    m3.tied_embeddings,
  ], [
    "Qwen3",
    "qwen3",
    24,
    true,
    false,
    true,
  ]);
  assertEquals([m3.rope_theta, m3.dmtd, m3.chat_template], [1e6, null, true]);
  assertEquals([m2.architecture, m2.qk_norm, m2.attention_bias, m2.tied_embeddings], [
    "FlexiDepth Qwen2",
    false,
    true,
    false,
  ]);
  const text = (await cli(["info", "--model", qwen3])).stdout;
  ok(/heads\s+4 query, 2 KV, head dim 24 \(hidden \/ heads = 16\); q\/k RMSNorm per head/.test(text), text);
  ok(/vocabulary\s+151936 \(LM head tied to the embedding\)/.test(text), text);
  ok(/q\/k\/v biases/.test((await cli(["info", "--model", qwen2])).stdout));
}

/** `flexidepth COMMAND` on the Qwen3 model, one token in answer to "Hi": its jsonl records. */
async function answerHi(qwen3: string, command: "run" | "chat", flags: string[]) {
  const r = await cli(
    [command, "--model", qwen3, "--format", "jsonl", "--max-tokens", "1", ...flags],
    "Hi\n",
  );
  assertEquals(r.code, 0, r.stderr);
  return jsonLines(r.stdout);
}

/** run: the prompt as the model sees it (the jsonl header's prompt ids) by --thinking; a bad value. */
async function checkThinkingInRun(qwen3: string): Promise<void> {
  const promptIds = async (...flags: string[]) =>
    (await answerHi(qwen3, "run", flags))[0].prompt_ids as number[];
  const open = [151644, 77091, 198]; // <|im_start|> assistant \n
  assertEquals((await promptIds()).slice(-3), open);
  assertEquals((await promptIds("--thinking", "on")).slice(-3), open);
  assertEquals((await promptIds("--thinking", "off")).slice(-7), [...open, 151667, 271, 151668, 271]);
  assertOneLineError(
    await cli(["run", "--thinking", "maybe"], ""),
    2,
    /--thinking must be one of on, off, got "maybe"/,
  );
}

/** chat and batch take it too: 4 more prompt tokens (<think> \n\n </think> \n\n). */
async function checkThinkingInChatAndBatch(qwen3: string): Promise<void> {
  const chatPrompt = async (...flags: string[]) =>
    (await answerHi(qwen3, "chat", flags)).find((x) => x.type === "summary").prompt_tokens;
  assertEquals(await chatPrompt("--thinking", "off"), (await chatPrompt()) + 4);
  await Deno.writeTextFile(`${tmp}/qwen-prompts.txt`, "Hi\n");
  const batchPrompt = async (out: string, ...flags: string[]) => {
    const args = ["batch", `${tmp}/qwen-prompts.txt`, "-o", out, "--model", qwen3, "--max-tokens", "1"];
    const r = await cli([...args, ...flags]);
    assertEquals(r.code, 0, r.stderr);
    return jsonLines(await Deno.readTextFile(out))[0].prompt_tokens;
  };
  assertEquals(
    await batchPrompt(`${tmp}/qwen-off.jsonl`, "--thinking", "off"),
    (await batchPrompt(`${tmp}/qwen.jsonl`)) + 4,
  );
}

Deno.test("cli: Qwen checkpoints — info describes their heads and head; --thinking off opens an empty <think> block", async () => {
  const { qwen3, qwen2 } = await writeQwenModels();
  await checkInfo(qwen3, qwen2);
  await checkThinkingInRun(qwen3);
  await checkThinkingInChatAndBatch(qwen3);
});
