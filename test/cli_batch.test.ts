/**
 * `flexidepth batch` as a user runs it, on stories260K(-flexidepth): killed (SIGKILL, also at seeded random
 * moments) or interrupted (Ctrl-C) and resumed to the output of an uninterrupted run, bad lines reported,
 * plain text prompts numbered by line.
 */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { mulberry32 } from "../src/util/random.ts";
import { runCli as cli, spawnCli as spawn } from "./cli_harness.ts";
import { BASE, cliTempDir, FLEXI, jsonLines } from "./cli_fixtures.ts";

const tmp = await cliTempDir();

Deno.test("cli: batch killed mid-run and resumed equals an uninterrupted run; a bad line is reported", async () => {
  const prompts = [
    "Once upon a time",
    JSON.stringify({ id: "cat", prompt: "The cat", options: { max_tokens: 6 } }),
    '{"prompt": "broken"', // line 3: not JSON
    "",
    JSON.stringify({ prompt: "A dog", options: { temperature: 0.9, top_k: 20, seed: 7 } }),
    "Lily and Ben",
    JSON.stringify({ id: 99, prompt: "One day", options: { stop: [" named"] } }),
    "Tom had a red ball",
  ];
  const input = `${tmp}/prompts.jsonl`;
  await Deno.writeTextFile(input, prompts.join("\n") + "\n");
  const ids = [1, "cat", 5, 6, 99, 8];
  const args = (out: string) => ["batch", input, "-o", out, "--model", FLEXI, "--max-tokens", "10"];
  const strip = (text: string) =>
    jsonLines(text).map((r) => {
      ok(r.timings && typeof r.timings.decode_ms === "number");
      const { timings: _, ...rest } = r;
      return rest;
    });

  const full = `${tmp}/full.jsonl`;
  const whole = await cli(args(full));
  assertEquals(whole.code, 1, whole.stderr);
  ok(/^error: line 3: not valid JSON/m.test(whole.stderr), whole.stderr);
  const expected = strip(await Deno.readTextFile(full));
  assertEquals(expected.map((r) => r.id), ids);
  for (const r of expected) {
    ok(typeof r.text === "string" && r.prompt_tokens > 0 && r.tokens.length > 0);
    assertEquals(
      r.layers_mean,
      r.tokens.reduce((a: number, t: { layers: number }) => a + t.layers, 0) / r.tokens.length,
    );
  }
  assertEquals(expected[1].tokens.length, 6);
  assertEquals(expected[4].stop_reason, "stop");

  // Kill it (no chance to clean up) once the first result is on disk, then tear the last line.
  const out = `${tmp}/resumed.jsonl`;
  const child = spawn(args(out));
  const drained = child.output();
  const t0 = Date.now();
  while (Date.now() - t0 < 60_000) {
    const text = await Deno.readTextFile(out).catch(() => "");
    if (text.includes("\n")) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGKILL");
  await drained;
  const partial = await Deno.readTextFile(out);
  const done = partial.split("\n").filter(Boolean).length;
  ok(done >= 1 && done < ids.length, `killed after ${done} of ${ids.length} results`);
  await Deno.writeTextFile(out, '{"id": 6, "prompt_tokens": 4, "te', { append: true });

  const resumed = await cli(args(out));
  assertEquals(resumed.code, 1, resumed.stderr);
  ok(/^error: line 3:/m.test(resumed.stderr), resumed.stderr);
  ok(resumed.stderr.includes(`${done} of ${ids.length} prompts already in`), resumed.stderr);
  assertEquals(strip(await Deno.readTextFile(out)), expected);

  // Everything done: nothing runs, nothing is written twice.
  const again = await cli(args(out));
  assertEquals(again.code, 1);
  assertEquals(strip(await Deno.readTextFile(out)), expected);
});

Deno.test("cli: batch after Ctrl-C (exit 130) and SIGKILLs at seeded random moments resumes to the full output", async () => {
  const prompts = [
    "Once upon a time",
    JSON.stringify({ id: "dog", prompt: "A dog", options: { temperature: 0.8, top_k: 30, seed: 3 } }),
    "Lily and Ben",
    JSON.stringify({ id: "ball", prompt: "Tom had a red ball", options: { max_tokens: 5 } }),
    "The sun was",
    JSON.stringify({ prompt: "One day", options: { temperature: 1, seed: 11 } }),
    "The little bird",
    "Mom said",
  ];
  const input = `${tmp}/kill-prompts.jsonl`;
  await Deno.writeTextFile(input, prompts.join("\n") + "\n");
  const args = (out: string) => ["batch", input, "-o", out, "--model", FLEXI, "--max-tokens", "12"];
  const strip = (text: string) => jsonLines(text).map(({ timings: _, ...rest }) => rest);

  const full = `${tmp}/kill-full.jsonl`;
  const t0 = performance.now();
  const whole = await cli(args(full));
  const wholeMs = performance.now() - t0;
  assertEquals(whole.code, 0, whole.stderr);
  const expected = strip(await Deno.readTextFile(full));
  assertEquals(expected.length, prompts.length);

  // Ctrl-C once the first result is on disk: the result being written is finished, exit 130.
  const out = `${tmp}/kill-resumed.jsonl`;
  const child = spawn(args(out));
  const exited = child.output();
  while (!(await Deno.readTextFile(out).catch(() => "")).includes("\n")) {
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGINT");
  const stopped = await exited;
  const stderr = new TextDecoder().decode(stopped.stderr);
  assertEquals(stopped.code, 130, stderr);
  ok(/batch: interrupted after \d+ results — run the same command again/.test(stderr), stderr);
  const afterSigint = await Deno.readTextFile(out);
  ok(afterSigint.endsWith("\n"), "whole lines only");
  assertEquals(strip(afterSigint), expected.slice(0, jsonLines(afterSigint).length));

  // Kill at random moments of a run (startup and model loading included), resume, repeat; then finish.
  const rng = mulberry32(2024);
  let midway = 0, partial = 0;
  for (let k = 0; k < 5; k++) {
    const child = spawn(args(out));
    const exited = child.output();
    // Within the first half of a whole run: often in startup or loading, else between or during results.
    const delay = 100 + rng() * wholeMs / 2;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finished = await Promise.race([
      exited.then(() => true),
      new Promise<false>((r) => timer = setTimeout(() => r(false), delay)),
    ]);
    clearTimeout(timer);
    if (!finished) {
      child.kill("SIGKILL");
      midway++;
    }
    await exited;
    const done = jsonLines(await Deno.readTextFile(out).catch(() => "")).length;
    ok(done <= prompts.length, `${done} results after kill ${k}`);
    if (!finished && done > 0 && done < prompts.length) partial++;
  }
  ok(midway >= 3 && partial >= 1, `${midway} of 5 kills landed mid-run, ${partial} between results`);
  const last = await cli(args(out));
  assertEquals(last.code, 0, last.stderr);
  assertEquals(strip(await Deno.readTextFile(out)), expected);
});

Deno.test("cli: batch with only good lines exits 0; plain text ids are line numbers", async () => {
  const input = `${tmp}/good.txt`;
  await Deno.writeTextFile(input, "Once upon a time\n\nThe cat\n");
  const out = `${tmp}/good.jsonl`;
  const r = await cli(["batch", input, "-o", out, "--model", BASE, "--max-tokens", "4"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(jsonLines(await Deno.readTextFile(out)).map((x) => x.id), [1, 3]);
});
