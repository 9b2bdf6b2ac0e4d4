/**
 * `flexidepth eval`'s runner end to end on toy tasks whose answers are known, through a fake Scorer of known
 * log-likelihoods (test/eval_fake.ts): acc, acc_norm, standard errors, mean layers, retention, the files
 * (samples.jsonl, results.json, report.html, run.json), prompts fitted to a short context, and a run
 * interrupted mid-way (and cut mid-line) that resumes to the same results without redoing finished items.
 */

import { deepStrictEqual as assertEquals, ok, rejects } from "node:assert/strict";
import { type EvalOptions, runEval } from "../src/eval/runner.ts";
import type { EvalMode } from "../src/eval/scorer.ts";
import type { ChoiceItem, GenerateItem, LoadedTask } from "../src/eval/task.ts";
import { GSM8K_GRADER } from "../src/eval/tasks/gsm8k.ts";
import { EvalError } from "../src/eval/errors.ts";
import { formatEvalTable } from "../src/eval/table.ts";
import { type FakeRules, FakeScorer } from "./eval_fake.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const MODES: EvalMode[] = [
  { name: "full", fullDepth: true },
  { name: "routed", fullDepth: false, threshold: 0.5 },
];

/** item → [choices, gold]; contexts "Q{i}:" */
const TOY: [string[], number][] = [[["a", "bbbb"], 1], [["cc", "d"], 0], [["e", "f"], 1], [["gg", "h"], 1]];

function choiceItem(i: number, choices: string[], gold: number): ChoiceItem {
  return {
    kind: "choice",
    index: i,
    choices,
    gold,
    shots: 0,
    build: () => ({ contexts: [`Q${i}:`], continuations: choices.map((c) => ` ${c}`) }),
  };
}

function toyTask(): LoadedTask {
  return {
    id: "toy",
    kind: "choice",
    metrics: ["acc", "acc_norm"],
    primary: "acc_norm",
    source: "test",
    digest: "toy",
    shots: 0,
    limitPerGroup: false,
    items: TOY.map(([c, g], i) => choiceItem(i, c, g)),
  };
}

function genItem(i: number, gold: string): GenerateItem {
  return {
    kind: "generate",
    index: i,
    gold,
    shots: 0,
    build: () => ({ shots: [], user: `Question: q${i}\nAnswer:` }),
  };
}

function genTask(): LoadedTask {
  return {
    id: "toygen",
    kind: "generate",
    metrics: ["exact_match"],
    primary: "exact_match",
    source: "test",
    digest: "toygen",
    shots: 0,
    limitPerGroup: false,
    items: [genItem(0, "2 + 3\n#### 5"), genItem(1, "#### 1,234")],
    grader: GSM8K_GRADER,
  };
}

// The hidden rule. full: acc picks [0, 0, 0, 1] (right: items 1, 3), acc_norm [1, 0, 0, 1] (right: 0, 1, 3).
const FULL = { " a": -2, " bbbb": -4, " cc": -1, " d": -3, " e": -1, " f": -2, " gg": -5, " h": -1 };
// routed: item 1 goes wrong both ways.
const ROUTED = { ...FULL, " cc": -4, " d": -1 };
const RULES: FakeRules = {
  loglikelihood: { full: FULL, routed: ROUTED },
  generate: {
    full: { "Question: q0": "2+3=5\n#### 5\n\nQuestion: next", "Question: q1": "The answer is 1234." },
    routed: { "Question: q0": "#### 6", "Question: q1": "so $1,234." },
  },
  layers: { full: 8, routed: 6 },
};

const tmp = await Deno.makeTempDir({ prefix: "flexidepth-eval-test-" });
let folders = 0;

function options(extra: Partial<EvalOptions> = {}): EvalOptions {
  return {
    tasks: [toyTask(), genTask()],
    modes: MODES,
    out: `${tmp}/run${folders++}`,
    limit: null,
    chat: false,
    settings: { model: "/toy", quant: "none", chat: false, seed: 0, context: 64, tasks: {} },
    model: {
      dir: "/toy",
      numLayers: 8,
      routingLayers: [4, 5, 6, 7],
      minLayers: 4,
      chatTemplate: false,
      dmtdCycle: null,
    },
    ...extra,
  };
}

const close = (a: number, b: number, label: string) => ok(Math.abs(a - b) < 1e-9, `${label}: ${a} vs ${b}`);

Deno.test("eval: acc, acc_norm, standard errors, layers and retention of toy tasks with known answers", async () => {
  const scorer = new FakeScorer(RULES);
  const opts = options();
  const { results, planned, ran, interrupted } = await runEval(scorer, opts);
  assertEquals([planned, ran, interrupted], [12, 12, false]);
  const [toy, gen] = results.tasks;
  const full = toy.modes[0], routed = toy.modes[1];
  close(full.metrics.acc!.value!, 0.5, "full acc");
  close(full.metrics.acc!.stderr!, Math.sqrt(1 / 12), "full acc stderr"); // var (n−1) = 1/3, n = 4
  close(full.metrics.acc_norm!.value!, 0.75, "full acc_norm");
  close(full.metrics.acc_norm!.stderr!, 0.25, "full acc_norm stderr"); // var = 0.25
  close(routed.metrics.acc!.value!, 0.25, "routed acc");
  close(routed.metrics.acc_norm!.value!, 0.5, "routed acc_norm");
  assertEquals([full.mean_layers, routed.mean_layers, full.scored_tokens, full.items], [8, 6, 8, 4]);
  close(routed.mean_layers_fraction!, 0.75, "routed fraction");
  assertEquals(gen.modes.map((m) => m.metrics.exact_match!.value), [1, 0.5]);
  const r = results.retention[0];
  assertEquals(r.mode, "routed");
  close(r.tasks.toy, 0.5 / 0.75, "toy ratio");
  close(r.tasks.toygen, 0.5, "toygen ratio");
  close(r.retention!, (0.5 / 0.75 + 0.5) / 2, "retention");
  const table = formatEvalTable(results);
  ok(table.includes("58.3%") && table.includes("0.7500 ± 0.2500"), table);
});

Deno.test("eval: samples.jsonl, results.json, report.html and run.json hold what the run did", async () => {
  const opts = options();
  await runEval(new FakeScorer(RULES), opts);
  const lines = (await Deno.readTextFile(`${opts.out}/samples.jsonl`)).trimEnd().split("\n").map((l) =>
    JSON.parse(l)
  );
  assertEquals(lines.length, 12);
  // items outer, modes inner: the modes are compared on the same items however far a run got
  assertEquals(lines.slice(0, 4).map((l: Json) => [l.task, l.index, l.mode]), [
    ["toy", 0, "full"],
    ["toy", 0, "routed"],
    ["toy", 1, "full"],
    ["toy", 1, "routed"],
  ]);
  const s: Json = lines[0];
  assertEquals(s.contexts, ["Q0:"]);
  assertEquals(s.context_ids[0][0], 1, "BOS leads the context");
  assertEquals(s.continuations, [" a", " bbbb"]);
  assertEquals(s.loglikelihoods, [-2, -4]);
  assertEquals([s.chosen, s.chosen_norm, s.gold, s.correct], [0, 1, 1, false]);
  assertEquals(s.scores, { acc: 0, acc_norm: 1 });
  assertEquals(s.layers, [[8], [8]]);
  const g: Json = lines.find((l: Json) => l.task === "toygen" && l.mode === "full" && l.index === 0);
  assertEquals([g.text, g.extracted, g.scores.exact_match], ["2+3=5\n#### 5\n\n", "5", 1]);
  assertEquals(g.prompt, "Question: q0\nAnswer:");
  assertEquals(g.prompt_ids[0], 1);
  const results = JSON.parse(await Deno.readTextFile(`${opts.out}/results.json`));
  assertEquals(results.settings.modes, ["full", "routed"]);
  assertEquals(results.tasks[0].modes[0].metrics.acc_norm, { value: 0.75, stderr: 0.25 });
  const html = await Deno.readTextFile(`${opts.out}/report.html`);
  ok(html.startsWith("<!DOCTYPE html>") && html.includes("<svg") && html.includes("58.3%"), "report");
  ok(!/https?:\/\//.test(html.replace(/xmlns="[^"]*"/g, "")), "the report makes no requests");
  const run = JSON.parse(await Deno.readTextFile(`${opts.out}/run.json`));
  assertEquals(run.seed, 0);
});

/** results.json without the timings. */
async function scores(dir: string): Promise<Json> {
  const r = JSON.parse(await Deno.readTextFile(`${dir}/results.json`));
  for (const t of r.tasks) for (const m of t.modes) m.seconds = m.scored_tokens_per_s = null;
  return r;
}

Deno.test("eval: an interrupted run (and a line cut short) resumes to the same results, redoing nothing finished", async () => {
  const whole = options();
  await runEval(new FakeScorer(RULES), whole);
  const opts = options();
  const abort = new AbortController();
  const first = new FakeScorer(RULES);
  first.onCall = (n) => n === 5 && abort.abort(); // Ctrl-C during the fifth call
  const cut = await runEval(first, { ...opts, signal: abort.signal });
  assertEquals(
    [cut.interrupted, cut.ran, first.calls.length],
    [true, 5, 5],
    "the call in progress is finished and kept",
  );
  await Deno.writeTextFile(`${opts.out}/samples.jsonl`, '{"task":"toy","mode":"full","ind', { append: true });
  const second = new FakeScorer(RULES);
  const done = await runEval(second, opts);
  assertEquals([done.resumed, done.ran, second.calls.length, done.interrupted], [5, 7, 7, false]);
  assertEquals(await scores(opts.out), {
    ...(await scores(whole.out)),
    model: (await scores(opts.out)).model,
  });
  const lines = (await Deno.readTextFile(`${opts.out}/samples.jsonl`)).trimEnd().split("\n");
  assertEquals(lines.length, 12);
  // Run again: nothing to do.
  const third = new FakeScorer(RULES);
  assertEquals((await runEval(third, opts)).ran, 0);
  assertEquals(third.calls.length, 0);
  // Other settings in the same folder are refused with the fix; a task added later is welcome.
  await rejects(
    runEval(new FakeScorer(RULES), { ...opts, settings: { ...opts.settings, seed: 7 } }),
    (e: Error) =>
      e instanceof EvalError && /other settings \(seed: 0 there, 7 now\).*new -o folder/.test(e.message),
  );
  const more = { ...toyTask(), id: "toy2", digest: "toy2" };
  const added = await runEval(new FakeScorer(RULES), { ...opts, tasks: [toyTask(), genTask(), more] });
  assertEquals(added.ran, 8);
});

Deno.test("eval: --limit takes the first items (per subject when a task counts per subject)", async () => {
  const opts = options({ limit: 3 });
  const { results } = await runEval(new FakeScorer(RULES), opts);
  assertEquals(results.tasks.map((t) => t.modes[0].items), [3, 2]);
  const grouped: LoadedTask = {
    ...toyTask(),
    limitPerGroup: true,
    items: TOY.map(([c, g], i) => ({ ...choiceItem(i, c, g), group: i < 2 ? "x" : "y" })),
  };
  const g = await runEval(new FakeScorer(RULES), options({ limit: 1, tasks: [grouped], modes: [MODES[0]] }));
  const m = g.results.tasks[0].modes[0];
  assertEquals(m.groups!.map((x) => [x.group, x.items]), [["x", 1], ["y", 1]]);
  // x: item 0 (acc_norm 1), y: item 2 (acc_norm 0): macro 0.5, stderr 0 (one item a subject)
  assertEquals(m.metrics.acc_norm, { value: 0.5, stderr: 0 });
});

Deno.test("eval: prompts too long for the context drop few-shot examples, then context tokens from the left", async () => {
  const item: ChoiceItem = {
    kind: "choice",
    index: 0,
    choices: ["yes", "no"],
    gold: 0,
    shots: 3,
    build: (k) => ({ contexts: [`${"ex ".repeat(4 * k)}Q:`], continuations: [" yes", " no"] }),
  };
  const task: LoadedTask = { ...toyTask(), items: [item] };
  // BOS + 4k words + "Q:" + 1 continuation token: k = 3 → 15 positions, k = 1 → 7
  const opts = options({ tasks: [task], modes: [MODES[0]] });
  await runEval(new FakeScorer(RULES), { ...opts, settings: { ...opts.settings, context: 9 } });
  const rec = JSON.parse((await Deno.readTextFile(`${opts.out}/samples.jsonl`)).trim());
  assertEquals([rec.shots, rec.truncated, rec.context_ids[0].length], [1, 0, 6]);
  const tight = options({ tasks: [task], modes: [MODES[0]] });
  await runEval(new FakeScorer(RULES), { ...tight, settings: { ...tight.settings, context: 2 } });
  const cut = JSON.parse((await Deno.readTextFile(`${tight.out}/samples.jsonl`)).trim());
  assertEquals([cut.shots, cut.truncated, cut.context_ids[0].length], [0, 1, 1 + 0]);
  assertEquals(cut.context_ids[0][0], 1, "BOS is kept");
});
