/**
 * The CLI as a user runs it: `main.ts` in a subprocess, stdin piped, on stories260K(-flexidepth). run in
 * every format (tokens equal the in-process API's), quantized and interrupted (Ctrl-C), info, --help,
 * --profile, and the one-line errors with their exit codes. chat is in cli_chat.test.ts, batch in
 * cli_batch.test.ts, Qwen checkpoints in cli_qwen.test.ts.
 */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { Model } from "../src/generation/model.ts";
import { BATCH_HELP } from "../src/cli/batch.ts";
import { CHAT_HELP } from "../src/cli/chat.ts";
import { INFO_HELP } from "../src/cli/info.ts";
import { RUN_HELP } from "../src/cli/run.ts";
import { testGpu } from "./harness.ts";
import { assertOneLineError, runCli as cli, spawnCli as spawn } from "./cli_harness.ts";
import { BASE, cliTempDir, FLEXI, jsonLines } from "./cli_fixtures.ts";

const tmp = await cliTempDir();

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
