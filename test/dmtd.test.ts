/**
 * DMTD decoding (../shared/design/dmtd-spec.md): the cycle schedule's golden traces, its kernels against
 * their references, what a step dispatches, and generation on the GPU.
 */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { assertClose, families, testGpu } from "./harness.ts";
import { CycleSchedule } from "../src/generation/dmtd.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { bufferFrom, readBuffer } from "../src/gpu/buffers.ts";
import { mixBytes, mixData, type MixRow, MixRows } from "../src/ops/dmtd/mix_rows.ts";
import { TokenHistory } from "../src/ops/dmtd/token_history.ts";
import { referenceMixRows } from "../src/ops/dmtd/reference.ts";
import { randomNormal } from "../src/util/random.ts";
import { writeDemoCheckpoint } from "../src/model/demo.ts";
import { Model } from "../src/generation/model.ts";
import type { ComputeRecorder } from "../src/gpu/profiler.ts";
import { openCheckpoint } from "../src/model/checkpoint.ts";
import { argmax, ReferenceModel } from "./reference.ts";
import { oracleGreedy, type Role } from "./dmtd_reference.ts";
import { runCli } from "./cli_harness.ts";
import { betweenHeadsMs, headStepCosts } from "../bench/dmtd.ts";

const tmp = await Deno.makeTempDir({ prefix: "flexidepth-dmtd-test-" });

/**
 * A small checkpoint with DMTD keys: `thinking` layers of `layers` think, τ = `cycle`; Llama layout, or Qwen3's
 * (q/k norms, head_dim ≠ hidden / heads, tied head) with `qwen3`.
 */
async function dmtdDemo(name: string, thinking = 3, layers = 4, cycle = 4, qwen3 = false): Promise<string> {
  const dir = `${tmp}/${name}`;
  await writeDemoCheckpoint(dir, {
    ...(qwen3 ? { arch: "qwen3" as const, headDim: 24 } : { headDim: 16 }),
    seed: 3,
    layers,
    hidden: 64,
    heads: 4,
    kvHeads: 2,
    intermediate: 96,
    vocabSize: 1000,
    dmtd: { thinking, cycle },
  });
  return dir;
}

/** The schedule's steps from the first generated token on: [position, head, refill block]. */
function trace(P: number, cycle: number, steps: number): Array<[number, boolean, number[]]> {
  const s = new CycleSchedule(cycle, P, P);
  return Array.from({ length: steps }, (_, j) => {
    const step = s.at(P + j);
    return [step.pos, step.head, step.refill];
  });
}

Deno.test("dmtd schedule: prompt 6, τ = 4 → heads at 6, 10, 14 with blocks [6], [7..10], [11..14]", () => {
  const heads = trace(6, 4, 12).filter(([, head]) => head);
  assertEquals(heads, [[6, true, [6]], [10, true, [7, 8, 9, 10]], [14, true, [11, 12, 13, 14]]]);
});

Deno.test("dmtd schedule: cycles anchored at the first generated token, whatever the prompt length", () => {
  // P = 5 is no multiple of τ = 4: heads at 5, 9, 13, not at 8, 12.
  assertEquals(trace(5, 4, 9).filter(([, h]) => h).map(([p]) => p), [5, 9, 13]);
  assertEquals(trace(1, 3, 7).filter(([, h]) => h).map(([p]) => p), [1, 4, 7]);
});

Deno.test("dmtd schedule: the thinking cache has no hole and no position written twice (τ = 1, 2, 3, 4, 6)", () => {
  for (const cycle of [1, 2, 3, 4, 6]) {
    for (const P of [1, 5, 6, 12]) {
      const steps = trace(P, cycle, 3 * cycle + 2);
      const written = [...Array(P).keys()]; // the prompt's, by prefill
      for (const [pos, head, refill] of steps) {
        ok(head === ((pos - P) % cycle === 0), `τ ${cycle} P ${P}: head at ${pos}`);
        if (head) ok(refill.at(-1) === pos, "a block ends at its head");
        else assertEquals(refill, [], "a non-head step runs no thinking layer");
        written.push(...refill);
      }
      const lastHead = steps.filter(([, h]) => h).at(-1)![0];
      assertEquals(written, [...Array(lastHead + 1).keys()], `τ ${cycle} P ${P}: [0, last head] once each`);
    }
  }
});

Deno.test("dmtd bench: a head step and its refill's cost come back from decode times on the real schedule", () => {
  // Steps cost F (full depth, and the first head: its block is its own row), N between heads, H a head over τ
  // rows; decode times are their means over the schedule's steps, as `decodeTokensPerSec` measures them.
  const F = 30, N = 13, P = 5, TIGHT = { atol: 1e-9, rtol: 1e-9 };
  for (const [cycle, H] of [[2, 35], [3, 45], [4, 52.7], [6, 70]]) {
    for (const steps of [31, 64, 127]) {
      const mean = (c: number, head: number) => {
        const s = new CycleSchedule(c, P, P);
        let total = 0;
        for (let j = 0; j < steps; j++) {
          const step = s.at(P + j);
          total += !step.head ? N : step.refill.length === 1 ? F : head;
        }
        return total / steps;
      };
      const between = betweenHeadsMs(steps, F, mean(steps + 1, 0));
      const got = headStepCosts(steps, F, between, cycle, mean(cycle, H));
      const label = `τ ${cycle}, ${steps} steps`;
      assertClose(new Float64Array([between, got.headMs]), new Float64Array([N, H]), TIGHT, label);
      assertClose(
        new Float64Array([got.refillOverOneRow]),
        new Float64Array([(H - N) / (F - N)]),
        TIGHT,
        label,
      );
    }
  }
  // Too short a decode to tell: no second head, or one step.
  ok(Number.isNaN(headStepCosts(5, F, N, 6, 20).headMs) && Number.isNaN(betweenHeadsMs(1, F, 20)));
});

for (const family of await families()) {
  Deno.test(`dmtd kernels (${family}): mix_rows and the token history against their references`, async () => {
    const gpu = await testGpu(family);
    const kernels = new KernelCache(gpu);
    const device = gpu.device;
    const width = 70, rows = 5;
    const tables: MixRow[][] = [
      [0, 1, 2, 3, 4].map((src) => ({ src, a: 1, b: 1 })), // a prompt chunk, e + t
      [{ src: 4, a: 1, b: 1 }], // a head: the block's last row into row 0
      [{ src: 0, a: 1, b: 1 }, { src: 1, a: 0, b: 1 }, { src: 2, a: 1, b: 0 }], // scoring: each row its input
      [],
    ];
    for (const [t, table] of tables.entries()) {
      const xv = randomNormal(t + 1, rows * width), ev = randomNormal(t + 9, rows * width);
      const x = bufferFrom(device, "x", xv), e = bufferFrom(device, "e", ev);
      const data = new DataView(new ArrayBuffer(mixBytes(rows)));
      mixData(table, data);
      const op = new MixRows(kernels, width, bufferFrom(device, "mix", data), x, e);
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      op.encode(pass, table.length);
      pass.end();
      device.queue.submit([enc.finish()]);
      const got = new Float32Array(await readBuffer(device, x, rows * width * 4));
      assertClose(got, referenceMixRows(xv, ev, width, table), { atol: 0, rtol: 0 }, `mix table ${t}`);
    }
    // Record: outputs 0 and 1 of rows (slot 1, pos 3) and (slot 0, pos 9 = the last: dropped); gather: a block.
    const ctx = 10;
    const step = bufferFrom(device, "step", new Uint32Array([3, 2, 0, 0]));
    const rowsBuf = bufferFrom(device, "rows", new Uint32Array([0, 0, 1, 3, 0, 9]));
    const outRows = bufferFrom(device, "out_rows", new Uint32Array([1, 2]));
    const tokens = bufferFrom(device, "tokens", new Uint32Array([77, 88, 99, 0]));
    const blockStep = bufferFrom(device, "block_step", new Uint32Array([2, 0, 0, 0]));
    const blockRows = bufferFrom(device, "block_rows", new Uint32Array([1, 4, 1, 3]));
    const history = new TokenHistory(kernels, 2, ctx, {
      step,
      rows: rowsBuf,
      outRows,
      blockStep,
      blockRows,
      tokens,
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    history.record(pass, 2);
    pass.end();
    device.queue.submit([enc.finish()]);
    const h = new Uint32Array(await readBuffer(device, history.history, 2 * ctx * 4));
    assertEquals(h[ctx + 4], 77, "slot 1, pos 3 → token at pos 4");
    assertEquals(Array.from(h).filter((v) => v !== 0), [77], "the token past the context is dropped");
    const enc2 = device.createCommandEncoder();
    const pass2 = enc2.beginComputePass();
    history.gather(pass2, 2);
    pass2.end();
    device.queue.submit([enc2.finish()]);
    assertEquals(Array.from(new Uint32Array(await readBuffer(device, tokens, 16))), [77, 0, 99, 0]);
  });
}

/** Labels of the matmul dispatches a recorded step makes (matmuls name their matrix). */
function matmulLabels(): { pass: ComputeRecorder; labels: string[] } {
  const labels: string[] = [];
  const pass = {
    setPipeline() {},
    setBindGroup(_: number, g: GPUBindGroup | null) {
      if (g) labels.push(g.label);
    },
    dispatchWorkgroups() {},
  } as unknown as ComputeRecorder;
  return { pass, labels };
}

Deno.test("dmtd: a non-head step dispatches no thinking-layer work; a head runs both groups", async () => {
  const model = await Model.load(await dmtdDemo("dispatch"), { gpu: await testGpu("fast"), progress: false });
  const fwd = model.engine.forward;
  const thinking = (labels: string[]) => labels.filter((l) => /layers\.[0-2]\./.test(l));
  const decoding = (labels: string[]) => labels.filter((l) => /layers\.3\./.test(l));
  // Records a step of `rows` decoding rows over `shape` (DmtdShape's fields in order) and returns its labels.
  const step = (rows: number, [thinkingRows, thinkingOutRows, mixRows]: number[], only = false) => {
    const m = matmulLabels();
    const shape = { thinkingRows, thinkingOutRows, fromHistory: !only && thinkingRows > 0, mixRows };
    fwd.encode(m.pass, rows, only ? 0 : 1, "sample", { ...shape, thinkingOnly: only });
    return m.labels;
  };
  const none = step(1, [0, 0, 0]);
  assertEquals(thinking(none), []);
  ok(decoding(none).length > 0, "the decoding layers run");
  const head = step(1, [4, 1, 1]);
  ok(thinking(head).length > 0 && decoding(head).length > 0, "a head runs every layer");
  // A refill before a prompt reads no thinking output: the last thinking layer only writes its K/V.
  const only = step(4, [4, 0, 0], true);
  const last = only.filter((l) => /layers\.2\./.test(l));
  assertEquals(
    last.map((l) => l.replace(/^\S+ /, "")),
    ["model.layers.2.self_attn.qkv"],
    "layer 2: K/V only",
  );
  ok(only.some((l) => /layers\.1\.mlp/.test(l)), "the layers before it run whole");
  assertEquals(decoding(only), []);
});

Deno.test("dmtd: every window depth gives the same tokens; heads and layer counts follow the cycle", async () => {
  const model = await Model.load(await dmtdDemo("windows"), { gpu: await testGpu("fast"), progress: false });
  const prompt = { ids: [5, 77, 300, 12, 599] };
  const runs = [];
  for (const window of [1, 3, "auto"] as const) {
    runs.push(await model.generate(prompt, { maxTokens: 14, window }).collect());
  }
  for (const r of runs.slice(1)) assertEquals(r.tokens.map((t) => t.id), runs[0].tokens.map((t) => t.id));
  // g0 comes from the prompt's pass, g1 from the head at P, then τ − 1 = 3 decoding-only tokens per cycle.
  const heads = runs[0].tokens.map((t) => t.head);
  assertEquals(heads, [
    true,
    true,
    false,
    false,
    false,
    true,
    false,
    false,
    false,
    true,
    false,
    false,
    false,
    true,
  ]);
  assertEquals(runs[0].tokens.map((t) => t.layers), heads.map((h) => h ? 4 : 1));
  // Heads at P, P + 4, P + 8, P + 12 ran blocks of 1, 4, 4 and 4 rows.
  assertEquals(runs[0].summary.dmtd, { cycle: 4, refillRows: 13 });
  const full = await model.generate(prompt, { maxTokens: 6, fullDepth: true }).collect();
  ok(full.tokens.every((t) => t.layers === 4 && t.head), "full depth: every layer, every token");
  assertEquals(full.summary.dmtd, { cycle: 0, refillRows: 0 });
});

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
  const run = await runCli([
    "run",
    "--model",
    dir,
    "--raw",
    "--format",
    "jsonl",
    "--max-tokens",
    "8",
    "hello",
  ]);
  assertEquals(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const tokens = lines.filter((l) => l.id !== undefined);
  assertEquals(tokens.map((t) => t.head), [true, true, false, false, true, false, false, true]);
  assertEquals(tokens.map((t) => t.layers), [4, 4, 1, 1, 4, 1, 1, 4]);
  const summary = lines.at(-1);
  assertEquals([summary.cycle, summary.refill_rows], [3, 7]);
  const cycled = await runCli([
    "run",
    "--model",
    dir,
    "--raw",
    "--format",
    "jsonl",
    "--max-tokens",
    "4",
    "--cycle",
    "2",
    "hi",
  ]);
  assertEquals(JSON.parse(cycled.stdout.trim().split("\n").at(-1)!).cycle, 2);

  const chat = await runCli(
    ["chat", "--model", dir, "--format", "jsonl", "--max-tokens", "5"],
    "first\nsecond\n",
  );
  assertEquals(chat.code, 0, chat.stderr);
  const turns = chat.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((l) => l.type === "summary");
  assertEquals(turns.length, 2);
  ok(turns[1].reused_tokens > 0, "the second turn reuses the first's cache");

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
});

Deno.test("dmtd: no GPU object is created while tokens stream (heads and the steps between)", async () => {
  const model = await Model.load(await dmtdDemo("alloc"), { gpu: await testGpu("fast"), progress: false });
  const prompt = { ids: [5, 77, 300] };
  await model.generate(prompt, { maxTokens: 12, window: 2 }).collect();
  const device = model.engine.gpu.device;
  const created: string[] = [];
  let streaming = false;
  const note = (kind: string, label?: string) => streaming && created.push(`${kind} ${label ?? ""}`);
  const orig = { buffer: device.createBuffer, texture: device.createTexture, group: device.createBindGroup };
  device.createBuffer = (d) => (note("buffer", d.label), orig.buffer.call(device, d));
  device.createTexture = (d) => (note("texture", d.label), orig.texture.call(device, d));
  device.createBindGroup = (d) => (note("bind group", d.label), orig.group.call(device, d));
  try {
    for (const cycle of [2, 4, 6]) {
      for await (const _ of model.generate(prompt, { maxTokens: 40, ignoreEos: true, dmtd: { cycle } })) {
        streaming = true;
      }
      streaming = false;
    }
  } finally {
    [device.createBuffer, device.createTexture, device.createBindGroup] = [
      orig.buffer,
      orig.texture,
      orig.group,
    ];
  }
  assertEquals(created, [], "GPU objects created after the first token");
});
