/**
 * The CLI as a user runs it: `main.ts` in a subprocess, stdin piped, on stories260K(-flexidepth) and a
 * small demo checkpoint. run in every format (tokens equal the in-process API's), chat across turns with
 * the KV cache reused, run and batch interrupted (Ctrl-C, SIGKILL) and resumed, info, and the one-line errors
 * with their exit codes.
 */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { Model } from "../src/generation/model.ts";
import { writeDemoCheckpoint } from "../src/model/demo.ts";
import { BATCH_HELP } from "../src/cli/batch.ts";
import { CHAT_HELP } from "../src/cli/chat.ts";
import { INFO_HELP } from "../src/cli/info.ts";
import { RUN_HELP } from "../src/cli/run.ts";
import { mulberry32 } from "../src/util/random.ts";
import { testGpu } from "./harness.ts";
import { assertOneLineError, runCli as cli, spawnCli as spawn } from "./cli_harness.ts";

const SHARED = new URL("../../shared/models/", import.meta.url).pathname;
const FLEXI = `${SHARED}stories260K-flexidepth`;
const BASE = `${SHARED}stories260K`;
const tmp = await Deno.makeTempDir({ prefix: "flexidepth-cli-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

const jsonLines = (text: string) => text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));

Deno.test("cli: run in every format through a pipe; jsonl tokens equal the in-process generation", async () => {
  const prompt = "Once upon a time";
  const model = await Model.load(FLEXI, { gpu: await testGpu("fast"), progress: false });
  const expected = await model.generate(prompt, { maxTokens: 24 }).collect();
  ok(new Set(expected.tokens.map((t) => t.layers)).size > 1, "the routed model should vary its layers");

  const args = ["run", "--model", FLEXI, "--max-tokens", "24"];
  const jsonl = await cli([...args, "--format", "jsonl"], prompt + "\n");
  assertEquals(jsonl.code, 0, jsonl.stderr);
  const records = jsonLines(jsonl.stdout);
  assertEquals(records[0].type, "header");
  assertEquals(records[0].num_layers, 5);
  assertEquals(records.at(-1).type, "summary");
  assertEquals(records.at(-1).generated_tokens, 24);
  const tokens = records.slice(1, -1);
  assertEquals(
    tokens,
    expected.tokens.map((t) => ({
      i: t.i,
      id: t.id,
      text: t.text,
      layers: t.layers,
      routes: t.routes.map(Number),
    })),
  );

  const plain = await cli([...args, "--format", "plain"], prompt);
  assertEquals(plain.code, 0, plain.stderr);
  assertEquals(plain.stdout, expected.summary.text + "\n");

  const ansi = await cli([...args, "--format", "ansi", prompt]);
  assertEquals(ansi.code, 0, ansi.stderr);
  ok(ansi.stdout.includes("layers used:"), "legend");
  ok(ansi.stdout.includes("\x1b[48;2;"), "coloured tokens");
  ok(/24 tokens · .* tokens\/s · mean [\d.]+ of 5 layers/.test(ansi.stdout), ansi.stdout);
  const visible = ansi.stdout.replace(new RegExp(String.fromCharCode(27) + "\\[[0-9;]*m", "g"), "");
  ok(visible.includes(expected.summary.text), visible);
});

Deno.test("cli: --quant q8 / q4 — info counts the smaller weights, run generates as the in-process API", async () => {
  const full = JSON.parse((await cli(["info", "--model", BASE, "--json"])).stdout).model;
  let previous = full.weight_bytes;
  for (const quant of ["q8", "q4"] as const) {
    const info = await cli(["info", "--model", BASE, "--json", "--quant", quant]);
    assertEquals(info.code, 0, info.stderr);
    const m = JSON.parse(info.stdout).model;
    assertEquals(m.quant, quant);
    ok(m.weight_bytes < previous, `${quant}: ${m.weight_bytes} bytes, not below ${previous}`);
    previous = m.weight_bytes;

    const model = await Model.load(BASE, { gpu: await testGpu("fast"), progress: false, quant });
    const expected = await model.generate("Once upon a time", { maxTokens: 12 }).collect();
    const r = await cli(
      ["run", "--model", BASE, "--quant", quant, "--max-tokens", "12", "--format", "plain"],
      "Once upon a time",
    );
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stdout, expected.summary.text + "\n");
  }
});

Deno.test("cli: Ctrl-C during run writes the tokens so far and the summary, then exits 130", async () => {
  const child = spawn([
    "run",
    "--model",
    BASE,
    "--max-tokens",
    "100000",
    "--format",
    "jsonl",
    "Once upon a time",
  ]);
  const stderr = new Response(child.stderr).text();
  let text = "";
  let interruptedAt = -1;
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    // The header and at least one token are out: interrupt.
    if (interruptedAt < 0 && text.split("\n").length > 2) {
      interruptedAt = text.split("\n").length - 1;
      child.kill("SIGINT");
    }
  }
  const { code } = await child.status;
  assertEquals(code, 130, await stderr);
  ok(interruptedAt > 0, "interrupted after the first token");
  const records = jsonLines(text);
  assertEquals(records[0].type, "header");
  const summary = records.at(-1);
  assertEquals(summary.type, "summary");
  assertEquals(summary.stop_reason, "aborted");
  const tokens = records.slice(1, -1);
  assertEquals(summary.generated_tokens, tokens.length);
  ok(tokens.length >= interruptedAt - 1 && tokens.length < 400, `${tokens.length} tokens`);
  assertEquals(tokens.map((t) => t.i), tokens.map((_, i) => i));
  assertEquals((await stderr).trim(), "");
});

Deno.test("cli: chat through a pipe keeps the KV cache across turns; /stats, /save, /reset", async () => {
  const demo = `${tmp}/chat-demo`;
  await writeDemoCheckpoint(demo, {
    layers: 2,
    hidden: 64,
    heads: 4,
    kvHeads: 2,
    headDim: 16,
    intermediate: 96,
    routingLayers: [1],
  });
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

Deno.test("cli: info --json on both stories models", async () => {
  for (const [dir, routed] of [[BASE, []], [FLEXI, [2, 3, 4]]] as const) {
    const r = await cli(["info", "--model", dir, "--json"]);
    assertEquals(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    const m = info.model;
    assertEquals(m.architecture, routed.length ? "FlexiDepth Llama" : "Llama");
    assertEquals([m.layers, m.hidden_size, m.heads, m.kv_heads, m.head_dim, m.vocab_size], [
      5,
      64,
      8,
      4,
      8,
      512,
    ]);
    assertEquals(m.routed_layers, routed);
    assertEquals(m.dtype, "F32");
    assertEquals(m.chat_template, false);
    assertEquals(m.weight_bytes, m.parameters * 4);
    ok(routed.length ? m.router_parameters > 0 : m.router_parameters === 0);
    assertEquals(m.context, 512);
    // f16 where the GPU offers shader-f16 (head_dim 8 allows it), 2 bytes an element; f32 otherwise.
    const f16 = info.gpu.features.includes("shader-f16");
    assertEquals(m.kv_cache_dtype, f16 ? "f16" : "f32");
    assertEquals(m.kv_cache_bytes, 2 * 5 * 512 * 4 * 8 * (f16 ? 2 : 4));
    assertEquals(m.memory_bytes, m.weight_bytes + m.kv_cache_bytes);
    ok(info.gpu.limits.maxStorageBufferBindingSize > 0 && info.gpu.limits.maxBufferSize > 0);
    ok(Array.isArray(info.gpu.features) && typeof info.gpu.adapter === "string");
  }
  const f32 = JSON.parse((await cli(["info", "--model", BASE, "--json", "--kv-cache", "f32"])).stdout).model;
  assertEquals([f32.kv_cache_dtype, f32.kv_cache_bytes], ["f32", 2 * 5 * 512 * 4 * 8 * 4]);
  const text = await cli(["info", "--model", FLEXI]);
  assertEquals(text.code, 0, text.stderr);
  ok(/layers\s+5, 3 routed: 2, 3, 4/.test(text.stdout), text.stdout);
  ok(/maxStorageBufferBindingSize\s+\d+/.test(text.stdout), text.stdout);
});

Deno.test("cli: bad flags and values are one line and exit code 2; a bad model path is one clear line", async () => {
  const cases: [string[], RegExp][] = [
    [["run", "--bogus"], /run: Unknown option '--bogus' — see 'flexidepth run --help'$/],
    [["chat", "--temperature=-1"], /--temperature must be a number ≥ 0/],
    [["chat", "--format", "html"], /--format must be one of ansi, plain, jsonl/],
    [["run", "--kv-cache", "f8"], /--kv-cache must be f16 or f32, got "f8" — use --kv-cache f32/],
    [["batch", "prompts.txt"], /-o RESULTS\.jsonl/],
    [["batch", "-o", "x.jsonl"], /give the input FILE/],
    [["batch", "a", "-o", "b", "--top-p", "2"], /--top-p must be a number ≥ 0 and ≤ 1/],
    [["info", "--context", "many"], /--context must be an integer/],
    [["info", "--jsn"], /Unknown option '--jsn'/],
    [["run", "--quant", "q3"], /--quant must be one of none, q8, q4, got "q3"/],
    [["experiment", "-o", `${tmp}/never`, "--quant", "int8"], /--quant must be one of none, q8, q4/],
    [["experiment", "-o", `${tmp}/never`, "--kv-cache", "f64"], /--kv-cache must be f16 or f32/],
    [["frobnicate"], /unknown command "frobnicate"/],
  ];
  const results = await Promise.all(cases.map(([args]) => cli(args, "")));
  results.forEach((r, i) => assertOneLineError(r, 2, cases[i][1], cases[i][0].join(" ")));

  const missing = `${tmp}/no-such-model`;
  await Deno.writeTextFile(`${tmp}/one.txt`, "Once upon a time\n");
  const bad = await Promise.all([
    cli(["run", "hello", "--model", missing]),
    cli(["chat", "--model", missing], "hi\n"),
    cli(["info", "--model", missing]),
    cli(["batch", `${tmp}/one.txt`, "-o", `${tmp}/never.jsonl`, "--model", missing]),
  ]);
  for (const r of bad) {
    assertOneLineError(r, "non-zero", /model folder .*no-such-model not found — pass --model/, "bad model");
  }
  const noInput = await cli(["batch", `${tmp}/nothing.txt`, "-o", `${tmp}/never.jsonl`]);
  assertOneLineError(noInput, 1, /input file .*nothing\.txt not found/, "missing batch input");
});

Deno.test("cli: every command has --help with examples", async () => {
  for (const help of [RUN_HELP, CHAT_HELP, BATCH_HELP, INFO_HELP]) {
    ok(/\nExamples:\n {2}flexidepth /.test(help), help.split("\n")[0]);
    ok(help.includes("-h, --help"));
  }
  const r = await cli(["batch", "--help"]);
  assertEquals(r.code, 0);
  assertEquals(r.stdout.trim(), BATCH_HELP.trim());
});

Deno.test("cli: --profile times every kernel of the routed model with GPU timestamps", async () => {
  const r = await cli([
    "run",
    "--model",
    FLEXI,
    "--raw",
    "--max-tokens",
    "4",
    "--profile",
    "--format",
    "plain",
  ], "Once");
  assertEquals(r.code, 0, r.stderr);
  ok(/GPU time per step \(4 steps\)/.test(r.stderr), r.stderr);
  // One row per kernel the routed forward uses, and a total.
  for (
    const kernel of [
      "embed",
      "rmsnorm",
      "(gemm|gemv)\\w*", // gemm, gemm_sg, gemm_tex or gemv_tex(_rows) by adapter and rows
      "route_gate",
      "gather",
      "scatter",
      "sample",
      "total",
    ]
  ) {
    ok(new RegExp(`^${kernel}\\b.*ms/step`, "m").test(r.stderr), `${kernel} missing from:\n${r.stderr}`);
  }
});

Deno.test("cli: Qwen checkpoints — info describes their heads and head; --thinking off opens an empty <think> block", async () => {
  // The real Qwen3 vocabulary (ids up to 151668 in the prompt), tied, head_dim 24 on hidden 64 / 4 heads.
  const qwen3 = `${tmp}/qwen3`;
  await writeDemoCheckpoint(qwen3, {
    arch: "qwen3",
    layers: 2,
    hidden: 64,
    heads: 4,
    kvHeads: 2,
    headDim: 24,
    intermediate: 96,
    tieEmbeddings: true,
  });
  const qwen2 = `${tmp}/qwen2`;
  await writeDemoCheckpoint(qwen2, {
    arch: "qwen2",
    layers: 2,
    hidden: 64,
    heads: 4,
    kvHeads: 2,
    headDim: 16,
    intermediate: 96,
    vocabSize: 2000,
    routingLayers: [1],
  });
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

  // The prompt as the model sees it: the jsonl header's prompt ids.
  const promptIds = async (...flags: string[]) => {
    const r = await cli(
      ["run", "--model", qwen3, "--format", "jsonl", "--max-tokens", "1", ...flags],
      "Hi\n",
    );
    assertEquals(r.code, 0, r.stderr);
    return jsonLines(r.stdout)[0].prompt_ids as number[];
  };
  const open = [151644, 77091, 198]; // <|im_start|> assistant \n
  assertEquals((await promptIds()).slice(-3), open);
  assertEquals((await promptIds("--thinking", "on")).slice(-3), open);
  assertEquals((await promptIds("--thinking", "off")).slice(-7), [...open, 151667, 271, 151668, 271]);
  assertOneLineError(
    await cli(["run", "--thinking", "maybe"], ""),
    2,
    /--thinking must be one of on, off, got "maybe"/,
  );
  // chat and batch take it too: 4 more prompt tokens (<think> \n\n </think> \n\n).
  const chatPrompt = async (...flags: string[]) => {
    const r = await cli(
      ["chat", "--model", qwen3, "--format", "jsonl", "--max-tokens", "1", ...flags],
      "Hi\n",
    );
    assertEquals(r.code, 0, r.stderr);
    return jsonLines(r.stdout).find((x) => x.type === "summary").prompt_tokens;
  };
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
});
