/**
 * `flexidepth experiment` end to end through the real CLI on stories260K-flexidepth: usage errors,
 * tokens.jsonl against the engine in-process, summary.json and the printed table recomputed from tokens.jsonl,
 * report.html in headless Chromium, and an interrupted (SIGKILLed) run that resumes to the same tokens.
 */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { Model } from "../src/generation/model.ts";
import { BUNDLED_PARAGRAPHS, integerList } from "../src/experiment/inputs.ts";
import { TASKS } from "../src/experiment/tasks.ts";
import { layerRgb } from "../src/experiment/report.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MODEL = new URL("../../shared/models/stories260K-flexidepth", import.meta.url).pathname;
const N = 2;
const MAX_TOKENS = 16;
const tmp = await Deno.makeTempDir({ prefix: "flexidepth-experiment-test-" });

// deno-lint-ignore no-explicit-any
type Rec = any;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function cliArgs(out: string, extra: string[] = []): string[] {
  return [
    "run",
    "-A",
    "main.ts",
    "experiment",
    "all",
    "--model",
    MODEL,
    "-n",
    String(N),
    "--max-tokens",
    String(MAX_TOKENS),
    "-o",
    out,
    ...extra,
  ];
}

async function cli(args: string[]): Promise<CliResult> {
  const r = await new Deno.Command(Deno.execPath(), { args, cwd: ROOT, stdin: "null" }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

async function readRecords(dir: string): Promise<Rec[]> {
  const text = await Deno.readTextFile(`${dir}/tokens.jsonl`);
  ok(text.endsWith("\n"), "tokens.jsonl ends with a newline");
  return text.trimEnd().split("\n").map((l) => JSON.parse(l));
}

/** The uninterrupted run, shared by the tests that read its outputs. */
let fullRun: Promise<{ dir: string; result: CliResult }> | null = null;
function uninterrupted() {
  fullRun ??= (async () => {
    const dir = `${tmp}/full`;
    const result = await cli(cliArgs(dir));
    assertEquals(result.code, 0, `experiment failed:\n${result.stderr}`);
    return { dir, result };
  })();
  return fullRun;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const close = (a: number, b: number, what: string) =>
  ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} != ${b}`);
/** Timing fields differ between runs; everything else must be identical. */
const withoutTiming = (r: Rec) => ({ ...r, tokens_per_s: 0, prefill_ms: 0, decode_ms: 0 });

Deno.test("experiment: usage errors exit 2 with the fix", async () => {
  const r = await cli(["run", "-A", "main.ts", "experiment", "all", "--model", MODEL]);
  assertEquals(r.code, 2);
  ok(/-o OUT is required/.test(r.stderr), r.stderr);
  const r2 = await cli(["run", "-A", "main.ts", "experiment", "words", "-o", `${tmp}/x`]);
  assertEquals(r2.code, 2);
  ok(/task set must be one of text, math, all/.test(r2.stderr), r2.stderr);
});

Deno.test("experiment: tokens.jsonl holds every sample once, with the planned inputs and prompts", async () => {
  const { dir } = await uninterrupted();
  const recs = await readRecords(dir);
  const keys = recs.map((r) => `${r.task}#${r.sample}`);
  const want = TASKS.flatMap((t) => Array.from({ length: N }, (_, i) => `${t.id}#${i}`));
  assertEquals(keys.slice().sort(), want.slice().sort());
  for (const r of recs) {
    const task = TASKS.find((t) => t.id === r.task)!;
    assertEquals(r.kind, task.kind);
    if (task.kind === "text") assertEquals(r.input, BUNDLED_PARAGRAPHS[r.sample]);
    else {
      assertEquals(r.input, integerList(0, r.sample)); // --seed defaults to 0
      // the same list for every math task's sample i
      assertEquals(r.input, recs.find((q) => q.task === "repeat" && q.sample === r.sample).input);
    }
    const filled = task.kind === "text"
      ? task.template.replace("{paragraph}", r.input)
      : task.template.replace("{list}", `[${r.input.join(", ")}]`);
    assertEquals(r.prompt, `${filled}\n\n`); // stories260K has no chat template: raw
    assertEquals(r.chat, false);
    assertEquals(r.tokens.length, r.generated_tokens);
    ok(r.generated_tokens >= 1 && r.generated_tokens <= MAX_TOKENS);
    assertEquals(r.tokens.map((t: Rec) => t.text).join(""), r.text);
    assertEquals(r.prompt_layers.length, r.prompt_ids.length);
    for (const t of r.tokens) {
      assertEquals(t.routes.length, 3);
      assertEquals(t.layers, 2 + t.routes.filter((b: number) => b === 1).length);
    }
  }
});

Deno.test("experiment: per-token layers and routes equal the engine's in-process for the same prompt ids", async () => {
  const { dir } = await uninterrupted();
  const recs = await readRecords(dir);
  const model = await Model.load(MODEL, { progress: false });
  for (const r of recs) {
    assertEquals(model.tokenizer.encodePrompt(r.prompt), r.prompt_ids, `${r.task}#${r.sample}: prompt ids`);
    const { tokens, summary } = await model.generate({ ids: r.prompt_ids }, {
      maxTokens: MAX_TOKENS,
      temperature: 0,
    })
      .collect();
    const label = `${r.task}#${r.sample}`;
    assertEquals(r.tokens.map((t: Rec) => t.id), tokens.map((t) => t.id), `${label}: ids`);
    assertEquals(r.tokens.map((t: Rec) => t.layers), tokens.map((t) => t.layers), `${label}: layers`);
    assertEquals(
      r.tokens.map((t: Rec) => t.routes),
      tokens.map((t) => t.routes.map(Number)),
      `${label}: routes`,
    );
    assertEquals(r.tokens.map((t: Rec) => t.text), tokens.map((t) => t.text), `${label}: texts`);
    assertEquals(r.prompt_layers, summary.promptLayers, `${label}: prompt layers`);
    assertEquals(r.stop_reason, summary.stopReason, `${label}: stop reason`);
  }
});

Deno.test("experiment: summary.json and the printed table are recomputed from tokens.jsonl", async () => {
  const { dir, result } = await uninterrupted();
  const recs = await readRecords(dir);
  const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
  assertEquals(summary.model.numLayers, 5);
  assertEquals(summary.model.routingLayers, [2, 3, 4]);
  assertEquals(summary.paper_num_layers, 32);
  const tableRows = new Map(
    result.stdout.split("\n").map((l) => l.trim().split(/\s+/)).filter((c) => c.length === 10).map((
      c,
    ) => [c[0], c]),
  );
  assertEquals(summary.tasks.map((t: Rec) => t.task), TASKS.map((t) => t.id));
  for (const task of TASKS) {
    const s = summary.tasks.find((t: Rec) => t.task === task.id);
    const rs = recs.filter((r) => r.task === task.id);
    const layers = rs.flatMap((r) => r.tokens.map((t: Rec) => t.layers));
    const m = mean(layers);
    const variance = mean(layers.map((l) => (l - m) ** 2));
    const tps = mean(rs.filter((r) => r.generated_tokens > 1).map((r) => r.tokens_per_s));
    assertEquals(s.samples, N);
    assertEquals(s.tokens, layers.length);
    close(s.mean_layers, m, `${task.id} mean`);
    close(s.variance_layers, variance, `${task.id} variance`);
    close(s.mean_layers_fraction, m / 5, `${task.id} fraction`);
    close(s.mean_prompt_layers, mean(rs.flatMap((r) => r.prompt_layers)), `${task.id} prompt layers`);
    assertEquals(s.paper_mean_layers, task.paper_mean_layers);
    close(s.paper_fraction, task.paper_mean_layers / 32, `${task.id} paper fraction`);
    close(s.tokens_per_s, tps, `${task.id} tokens/s`);
    const allTokens = rs.flatMap((r) => r.tokens);
    [2, 3, 4].forEach((layer, k) => {
      assertEquals(s.layer_usage[k].layer, layer);
      close(
        s.layer_usage[k].fraction,
        allTokens.filter((t: Rec) => t.routes[k] === 1).length / allTokens.length,
        "usage",
      );
    });
    assertEquals(
      s.histogram,
      [2, 3, 4, 5].map((l) => ({ layers: l, count: layers.filter((x) => x === l).length })),
    );
    if (task.kind === "math") {
      for (const r of rs) {
        const list: number[] = r.input;
        const want = task.id === "sum"
          ? String(list.reduce((a, b) => a + b, 0))
          : task.id === "product"
          ? String(list.reduce((a, b) => a * BigInt(b), 1n))
          : Array(5).fill(list).flat().join(", ");
        assertEquals(r.expected, want, `${task.id}#${r.sample} expected`);
        const ints = (r.text.match(/\d+/g) ?? []) as string[];
        if (task.id !== "repeat") {
          assertEquals(r.correct, ints.at(-1) === want, `${task.id}#${r.sample} correct`);
        }
      }
      const correct = rs.filter((r) => r.correct).length;
      assertEquals(s.accuracy, { correct, total: N, rate: correct / N });
    } else assertEquals(s.accuracy, null);
    // The printed table: same numbers, rounded.
    const row = tableRows.get(task.id);
    ok(row, `table row for ${task.id} in:\n${result.stdout}`);
    assertEquals(row, [
      task.id,
      String(N),
      String(layers.length),
      m.toFixed(2),
      variance.toFixed(3),
      (m / 5).toFixed(3),
      task.paper_mean_layers.toFixed(2),
      (task.paper_mean_layers / 32).toFixed(3),
      tps.toFixed(1),
      task.kind === "math" ? `${s.accuracy.correct}/${N}` : "—",
    ]);
  }
});

async function findChromium(): Promise<string> {
  for (const bin of ["chromium", "chromium-browser", "google-chrome"]) {
    try {
      const r = await new Deno.Command(bin, { args: ["--version"], stdout: "null", stderr: "null" }).output();
      if (r.success) return bin;
    } catch {
      // not on PATH
    }
  }
  throw new Error(
    "this test needs headless Chromium and none is on PATH — install it: apt-get install -y chromium " +
      "(Debian; .ci/run does this)",
  );
}

Deno.test("experiment: report.html opens in headless Chromium without console errors, one heat-map row per sample", async () => {
  const { dir } = await uninterrupted();
  const recs = await readRecords(dir);
  const html = await Deno.readTextFile(`${dir}/report.html`);
  ok(
    !/\b(src|href)\s*=|url\(|@import/i.test(html),
    "report.html is self-contained (no src/href/url()/@import)",
  );
  const bin = await findChromium();
  const profile = await Deno.makeTempDir({ dir: tmp, prefix: "chromium-" });
  const r = await new Deno.Command(bin, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
      "--enable-logging=stderr",
      "--v=0",
      "--dump-dom",
      `file://${dir}/report.html`,
    ],
    stdin: "null",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const dec = new TextDecoder();
  const dom = dec.decode(r.stdout);
  const log = dec.decode(r.stderr);
  assertEquals(r.code, 0, `chromium failed:\n${log}`);
  const consoleLines = log.split("\n").filter((l) => /:CONSOLE[:(]|Uncaught/.test(l));
  assertEquals(consoleLines, [], "console messages");
  ok(/<body[^>]*data-script="ok"/.test(dom), "the page's script ran to the end");
  const rows = [
    ...dom.matchAll(/<div class="hm-row" data-task="([^"]+)" data-sample="(\d+)">(.*?)<\/div><\/div>/gs),
  ];
  assertEquals(rows.length, recs.length, "one heat-map row per sample");
  assertEquals(
    rows.map((m) => `${m[1]}#${m[2]}`).sort(),
    recs.map((r) => `${r.task}#${r.sample}`).sort(),
  );
  for (const m of rows) {
    const rec = recs.find((r) => r.task === m[1] && r.sample === Number(m[2]));
    const spans = [...m[3].matchAll(/<span class="t l(\d+)(?: empty)?" data-r="([01]*)">/g)];
    const label = `${m[1]}#${m[2]}`;
    assertEquals(
      spans.map((s) => Number(s[1])),
      rec.tokens.map((t: Rec) => t.layers),
      `${label} token layers`,
    );
    assertEquals(
      spans.map((s) => s[2]),
      rec.tokens.map((t: Rec) => t.routes.join("")),
      `${label} token routes`,
    );
  }
  // Token colours: light-to-dark blue by layers used, one CSS class per layer count.
  for (let l = 2; l <= 5; l++) {
    const { bg, fg } = layerRgb(l, 2, 5);
    ok(dom.includes(`.l${l}{background:${bg};color:${fg}}`), `colour rule for ${l} layers`);
  }
  ok(layerRgb(2, 2, 5).bg === "rgb(222,235,247)" && layerRgb(5, 2, 5).bg === "rgb(8,48,107)");
  for (const section of ["Routed layers run, per task", "Layers per token", "Per-token heat-map"]) {
    ok(dom.includes(section), section);
  }
  assertEquals((dom.match(/<svg class="hist"/g) ?? []).length, TASKS.length, "one histogram per task");
  assertEquals((dom.match(/<polyline /g) ?? []).length, TASKS.length, "one layer-usage line per task");
});

Deno.test("experiment: a SIGKILLed run resumes, ending with every sample once and the uninterrupted run's tokens", async () => {
  const { dir: fullDir } = await uninterrupted();
  const dir = `${tmp}/resumed`;
  const tokens = `${dir}/tokens.jsonl`;
  const child = new Deno.Command(Deno.execPath(), {
    args: cliArgs(dir),
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let lines = 0;
  const deadline = Date.now() + 120_000;
  while (lines === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    lines = await Deno.readTextFile(tokens).then((t) => t.split("\n").length - 1, () => 0);
  }
  child.kill("SIGKILL");
  await child.status;
  const before = (await Deno.readTextFile(tokens)).split("\n").length - 1;
  ok(before >= 1, "a first line appeared");
  ok(before < TASKS.length * N, `the run was killed before it finished (${before} lines)`);
  // A write cut short by the kill: must be ignored and redone.
  await Deno.writeTextFile(tokens, '{"task":"product","sample":1,"kind":"ma', { append: true });

  const r = await cli(cliArgs(dir));
  assertEquals(r.code, 0, r.stderr);
  ok(r.stderr.includes(`resumed: ${before} of ${TASKS.length * N} samples`), r.stderr);
  const resumed = await readRecords(dir);
  const full = await readRecords(fullDir);
  const key = (x: Rec) => `${x.task}#${x.sample}`;
  assertEquals(new Set(resumed.map(key)).size, resumed.length, "every sample exactly once");
  assertEquals(resumed.map(key).sort(), full.map(key).sort());
  const byKey = new Map(full.map((x) => [key(x), x]));
  for (const x of resumed) assertEquals(withoutTiming(x), withoutTiming(byKey.get(key(x))), key(x));
  const sFull = JSON.parse(await Deno.readTextFile(`${fullDir}/summary.json`));
  const sRes = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
  const noSpeed = (s: Rec) => s.tasks.map((t: Rec) => ({ ...t, tokens_per_s: 0 }));
  assertEquals(noSpeed(sRes), noSpeed(sFull));

  // Same folder, other settings: refused with the fix, nothing appended.
  const other = await cli(cliArgs(dir, ["--seed", "1"]));
  assertEquals(other.code, 1);
  ok(/other settings \(seed: 0 there, 1 now\).*new -o folder/.test(other.stderr), other.stderr);
  assertEquals((await readRecords(dir)).length, resumed.length);
});
