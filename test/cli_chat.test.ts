/**
 * `flexidepth chat` as a user runs it, stdin piped, on a small demo checkpoint: the KV cache reused across
 * turns, /stats, /save and /reset; and the one-line error on a model without a chat template.
 */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { writeDemoCheckpoint } from "../src/model/demo.ts";
import { assertOneLineError, runCli as cli } from "./cli_harness.ts";
import { BASE, cliTempDir, jsonLines, SMALL_DEMO } from "./cli_fixtures.ts";

const tmp = await cliTempDir();

Deno.test("cli: chat through a pipe keeps the KV cache across turns; /stats, /save, /reset", async () => {
  const demo = `${tmp}/chat-demo`;
  await writeDemoCheckpoint(demo, { ...SMALL_DEMO, routingLayers: [1] });
  const saved = `${tmp}/conversation.json`;
  const input = ["Hello there", "", "What did I just say?", "/stats", `/save ${saved}`, "/reset", "Again", ""]
    .join("\n");
  const r = await cli(
    ["chat", "--model", demo, "--max-tokens", "6", "--system", "Be brief.", "--format", "jsonl"],
    input,
  );
  assertEquals(r.code, 0, r.stderr);
  const records = jsonLines(r.stdout);
  assertEquals(records[0].type, "header");
  const summaries = records.filter((x) => x.type === "summary");
  assertEquals(summaries.map((s) => s.turn), [1, 2, 3]);
  const [first, second, third] = summaries;
  assertEquals(first.reused_tokens, 0);
  // The second turn's prompt starts with the whole first prompt, which is not prefilled again.
  ok(second.reused_tokens >= first.prompt_tokens, `reused ${second.reused_tokens} of ${first.prompt_tokens}`);
  ok(second.prompt_tokens > first.prompt_tokens + first.generated_tokens);
  // After /reset the conversation is the system message and one question: only that prefix is reused.
  ok(third.reused_tokens > 0 && third.reused_tokens < first.prompt_tokens, JSON.stringify(third));
  const tokensOfTurn2 = records.filter((x) => x.turn === 2 && x.type === undefined);
  assertEquals(tokensOfTurn2.length, second.generated_tokens);
  for (const t of tokensOfTurn2) {
    assertEquals(
      t.layers,
      1 + t.routes.reduce((a: number, b: number) => a + b, 0),
    );
  }

  const stats = records.find((x) => x.type === "stats");
  assertEquals(stats.turn, 2);
  assertEquals(stats.reused_tokens, second.reused_tokens);
  assertEquals(records.find((x) => x.type === "saved")?.messages, 5);
  const conversation = JSON.parse(await Deno.readTextFile(saved));
  assertEquals(conversation.messages.map((m: { role: string }) => m.role), [
    "system",
    "user",
    "assistant",
    "user",
    "assistant",
  ]);
  assertEquals(conversation.messages[3].content, "What did I just say?");

  // Plain text in a pipe: one answer line per turn, and /stats as text.
  const plain = await cli(["chat", "--model", demo, "--max-tokens", "3"], "Hi\nHow are you?\n/stats\n");
  assertEquals(plain.code, 0, plain.stderr);
  const lines = plain.stdout.trimEnd().split("\n");
  ok(
    /^last turn: 3 tokens · .* · prompt \d+ tokens, [1-9]\d* reused from the cache/.test(lines.at(-1)!),
    lines.at(-1),
  );
});

Deno.test("cli: chat on a model without a chat template says to use run --raw", async () => {
  const r = await cli(["chat", "--model", BASE], "Hello\n");
  assertOneLineError(r, 1, /no chat template.*run --raw/, "chat without template");
});
