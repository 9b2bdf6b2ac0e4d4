/**
 * `flexidepth eval`'s data from the Hugging Face Hub: real parquet files (written with hyparquet-writer in the
 * layouts the hub uses) served by the local test hub, pulled with `pull --dataset` into a Hugging Face cache
 * (datasets--ORG--NAME), and read back by the built-in tasks into lm-eval's prompts; a missing dataset names the
 * pull command. And user task files: local JSONL, CSV and parquet rows, a hub split, choices from a field or
 * templates, generation, and their errors.
 */

import { deepStrictEqual as assertEquals, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { pull } from "../src/hub/pull.ts";
import { HubError } from "../src/hub/cache.ts";
import { type DataLocator, splitFiles } from "../src/eval/data.ts";
import { builtinTask } from "../src/eval/tasks/registry.ts";
import type { ChoiceItem, GenerateItem } from "../src/eval/task.ts";
import { rawPrompt } from "../src/eval/task.ts";
import { loadTaskFile } from "../src/eval/task_file.ts";
import { EvalError } from "../src/eval/errors.ts";
import { startHubServer } from "./hub_server.ts";

type Schema = Record<string, unknown>[];
const STR = { type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" };
const I64 = { type: "INT64", repetition_type: "OPTIONAL" };
/** A parquet LIST of strings, as the datasets library writes Sequence(Value("string")). */
const listOf = (name: string): Schema => [
  { name, repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
  { name: "list", repetition_type: "REPEATED", num_children: 1 },
  { name: "element", ...STR },
];

function parquet(columns: [string, unknown[]][], schema: Schema): Uint8Array {
  const buf = parquetWriteBuffer({
    columnData: columns.map(([name, data]) => ({ name, data: data as never })),
    schema: [{ name: "root", num_children: columns.length }, ...schema] as never,
  });
  return new Uint8Array(buf);
}

const ARC = parquet([
  ["id", ["Mercury_1", "Mercury_2"]],
  ["question", ["Which gas do plants take in?", "What melts ice?"]],
  ["choices", [{ text: ["oxygen", "carbon dioxide", "helium"], label: ["A", "B", "C"] }, {
    text: ["heat", "cold"],
    label: ["1", "2"],
  }]],
  ["answerKey", ["B", "1"]],
], [
  { name: "id", ...STR },
  { name: "question", ...STR },
  { name: "choices", repetition_type: "OPTIONAL", num_children: 2 },
  ...listOf("text"),
  ...listOf("label"),
  { name: "answerKey", ...STR },
]);

const mmluRows = (subject: string, qs: string[]) =>
  parquet([
    ["question", qs],
    ["subject", qs.map(() => subject)],
    ["choices", qs.map((q) => [`${q} a`, `${q} b`, `${q} c`, `${q} d`])],
    ["answer", qs.map((_, i) => BigInt(i % 4))],
  ], [{ name: "question", ...STR }, { name: "subject", ...STR }, ...listOf("choices"), {
    name: "answer",
    ...I64,
  }]);

const HELLASWAG = parquet([
  ["activity_label", ["Roof shingle removal"]],
  ["ctx_a", ["A man is sitting on a roof."]],
  ["ctx_b", ["he"]],
  ["endings", [[
    "is using wrap.",
    "is ripping tiles off.",
    "is holding a cube.",
    "starts pulling up roofing.",
  ]]],
  ["label", ["3"]],
], [
  { name: "activity_label", ...STR },
  { name: "ctx_a", ...STR },
  { name: "ctx_b", ...STR },
  ...listOf("endings"),
  { name: "label", ...STR },
]);

const gsmRows = (qs: string[]) =>
  parquet([["question", qs], ["answer", qs.map((_, i) => `work\n#### ${i}`)]], [
    { name: "question", ...STR },
    { name: "answer", ...STR },
  ]);

/** Serves `files` as dataset `repo`, pulls it into `cache`. */
async function pullDataset(repo: string, files: Record<string, Uint8Array | string>, cache: string) {
  const hub = await startHubServer({ repo, type: "dataset", extra: files });
  try {
    return await pull({ repo, type: "dataset", endpoint: hub.url, cacheDir: cache, token: "", retries: 0 });
  } finally {
    await hub.close();
  }
}

const cache = await Deno.makeTempDir({ prefix: "flexidepth-hf-datasets-" });
const LOC: DataLocator = { dir: null, explicit: false, cacheDir: cache };
const README = "---\nlicense: cc-by-sa-4.0\n---\n# test\n";

Deno.test("eval hub: pull --dataset lays parquet into datasets--ORG--NAME, and the ARC and MMLU tasks read it", async () => {
  const arc = await pullDataset("allenai/ai2_arc", {
    "ARC-Easy/test-00000-of-00001.parquet": ARC,
    "ARC-Easy/train-00000-of-00001.parquet": ARC,
    "ARC-Challenge/test-00000-of-00001.parquet": ARC,
    "README.md": README,
    "scripts/convert.py": "print('not needed')",
  }, cache);
  ok(arc.snapshotDir.startsWith(join(cache, "datasets--allenai--ai2_arc", "snapshots")), arc.snapshotDir);
  assertEquals(arc.files.map((f) => f.path).sort(), [
    "ARC-Challenge/test-00000-of-00001.parquet",
    "ARC-Easy/test-00000-of-00001.parquet",
    "ARC-Easy/train-00000-of-00001.parquet",
    "README.md",
  ]);
  ok(arc.files.find((f) => f.path.endsWith(".parquet"))!.lfs, "parquet files are LFS, checked by sha256");
  const easy = await builtinTask("arc_easy")!.load(LOC, { shots: null, seed: 0 });
  assertEquals(easy.items.length, 2);
  const it = easy.items[0] as ChoiceItem;
  assertEquals(it.build(0), {
    contexts: ["Question: Which gas do plants take in?\nAnswer:"],
    continuations: [" oxygen", " carbon dioxide", " helium"],
  });
  assertEquals([it.gold, (easy.items[1] as ChoiceItem).gold], [1, 0], "answerKey B of A–C, 1 of 1–2");
  ok(easy.source.includes("allenai/ai2_arc"), easy.source);

  await pullDataset("cais/mmlu", {
    "all/test-00000-of-00001.parquet": parquet([], []).length
      ? mmluRows("anatomy", ["Q1?", "Q2?"])
      : new Uint8Array(),
    "all/dev-00000-of-00001.parquet": mmluRows("anatomy", ["D1?", "D2?", "D3?", "D4?", "D5?"]),
    "anatomy/test-00000-of-00001.parquet": mmluRows("anatomy", ["Q1?", "Q2?"]),
  }, cache);
  const mmlu = await builtinTask("mmlu")!.load(LOC, { shots: 1, seed: 0 });
  const q = mmlu.items[1] as ChoiceItem;
  assertEquals([mmlu.items.length, q.group, q.gold], [2, "anatomy", 1]);
  assertEquals(
    q.build(1).contexts[0],
    "The following are multiple choice questions (with answers) about anatomy.\n\n" +
      "D1?\nA. D1? a\nB. D1? b\nC. D1? c\nD. D1? d\nAnswer: A\n\nQ2?\nA. Q2? a\nB. Q2? b\nC. Q2? c\nD. Q2? d\nAnswer:",
  );
});

Deno.test("eval hub: HellaSwag from the parquet branch's layout, GSM8K's examples drawn from train with the seed", async () => {
  await pullDataset("Rowan/hellaswag", { "default/validation/0000.parquet": HELLASWAG }, cache);
  const hs = await builtinTask("hellaswag")!.load(LOC, { shots: null, seed: 0 });
  assertEquals((hs.items[0] as ChoiceItem).build(0).contexts, [
    "Roof shingle removal: A man is sitting on a roof. He",
  ]);
  await pullDataset("openai/gsm8k", {
    "main/test-00000-of-00001.parquet": gsmRows(["T0", "T1", "T2"]),
    "main/train-00000-of-00001.parquet": gsmRows(["A", "B", "C", "D", "E", "F"]),
    "socratic/test-00000-of-00001.parquet": gsmRows(["S0"]),
  }, cache);
  const a = await builtinTask("gsm8k")!.load(LOC, { shots: 2, seed: 1 });
  const b = await builtinTask("gsm8k")!.load(LOC, { shots: 2, seed: 1 });
  assertEquals(a.items.length, 3, "the main config's test split, every problem scored");
  const prompt = (t: typeof a) => rawPrompt((t.items[0] as GenerateItem).build(2));
  assertEquals(prompt(a), prompt(b), "the same seed draws the same examples");
  ok(
    prompt(a).endsWith("\n\nQuestion: T0\nAnswer:") &&
      /^Question: [A-F]\nAnswer: work\n#### \d\n\n/.test(prompt(a)),
  );
});

Deno.test("eval hub: a dataset not in the cache names its pull command; a repo without parquet is refused", async () => {
  await rejects(
    builtinTask("winogrande")!.load(LOC, { shots: null, seed: 0 }),
    (e: Error) =>
      e instanceof EvalError &&
      /allenai\/winogrande\/winogrande_xl \(validation\) is not in the Hugging Face cache/.test(e.message) &&
      /run: flexidepth pull --dataset allenai\/winogrande, or give --data DIR holding winogrande_dev.json/
        .test(e.message),
  );
  await rejects(
    pullDataset("EdinburghNLP/xsum", { "xsum.py": "# a loading script", "README.md": README }, cache),
    (e: Error) => e instanceof HubError && /no parquet files.*refs\/convert\/parquet/.test(e.message),
  );
  await rejects(
    builtinTask("arc_easy")!.load({ dir: "/nonexistent-data", explicit: true, cacheDir: cache }, {
      shots: null,
      seed: 0,
    }),
    (e: Error) => e instanceof EvalError && /arc_easy_test.json is not in the data folder/.test(e.message),
  );
});

Deno.test("eval hub: a split's parquet files in each layout the hub uses", () => {
  const files = [
    "ARC-Easy/test-00000-of-00001.parquet",
    "ARC-Easy/train-00000-of-00001.parquet",
    "ARC-Challenge/test-00000-of-00001.parquet",
    "default/validation/0000.parquet",
    "default/validation/0001.parquet",
    "data/test-00000-of-00002.parquet",
    "data/test-00001-of-00002.parquet",
    "README.md",
  ];
  assertEquals(splitFiles(files, { repo: "x/y", config: "ARC-Easy", split: "test" }), [
    "ARC-Easy/test-00000-of-00001.parquet",
  ]);
  assertEquals(splitFiles(files, { repo: "x/y", split: "validation" }), [
    "default/validation/0000.parquet",
    "default/validation/0001.parquet",
  ]);
  assertEquals(
    splitFiles(files, { repo: "x/y", config: "default", split: "test" }).length,
    4,
    "default: any folder",
  );
  assertEquals(splitFiles(files, { repo: "x/y", config: "main", split: "test" }), []);
});

const tmp = await Deno.makeTempDir({ prefix: "flexidepth-taskfile-" });

async function writeTask(name: string, spec: unknown, files: Record<string, string | Uint8Array> = {}) {
  for (const [f, content] of Object.entries(files)) {
    typeof content === "string"
      ? await Deno.writeTextFile(join(tmp, f), content)
      : await Deno.writeFile(join(tmp, f), content);
  }
  const path = join(tmp, name);
  await Deno.writeTextFile(path, JSON.stringify(spec));
  return path;
}

Deno.test("eval task files: multiple choice from JSONL, CSV and parquet rows; choices from a field or templates", async () => {
  const jsonl = await writeTask("capitals.json", {
    data: { file: "capitals.jsonl" },
    prompt: "Q: What is the capital of {{ country }}?\nA:",
    choices: "options",
    target: "{{ answer }}",
    metric: "acc_norm",
  }, {
    "capitals.jsonl": '{"country": "France", "options": ["Paris", "Lyon"], "answer": 0}\n' +
      '{"country": "Italy", "options": ["Milan", "Rome"], "answer": "Rome"}\n',
  });
  const t = await loadTaskFile(jsonl, LOC);
  assertEquals([t.id, t.kind, t.primary, t.metrics, t.items.length], ["capitals", "choice", "acc_norm", [
    "acc",
    "acc_norm",
  ], 2]);
  const it = t.items[1] as ChoiceItem;
  assertEquals(it.build(0), {
    contexts: ["Q: What is the capital of Italy?\nA:"],
    continuations: [" Milan", " Rome"],
  });
  assertEquals(it.gold, 1, "a target may be the choice's text");

  const csv = await writeTask("yesno.json", {
    task: "yesno",
    data: { file: "yesno.csv" },
    prompt: "{{ q }}",
    choices: ["{{ a }}", "{{ b }}"],
    target: "{{ gold }}",
    metric: "acc",
    target_delimiter: "\n",
  }, { "yesno.csv": 'q,a,b,gold\n"Is it, really?",yes,no,1\n' });
  const y = (await loadTaskFile(csv, LOC)).items[0] as ChoiceItem;
  assertEquals([y.build(0), y.gold], [{ contexts: ["Is it, really?"], continuations: ["\nyes", "\nno"] }, 1]);

  const pq = await writeTask("pq.json", {
    data: { file: "rows.parquet" },
    prompt: "{{ question }}",
    choices: "choices.text",
    target: "{% for l in choices.label %}{% if l == answerKey %}{{ loop.index0 }}{% endif %}{% endfor %}",
    metric: "acc",
  }, { "rows.parquet": ARC });
  const p = await loadTaskFile(pq, LOC);
  assertEquals([(p.items[0] as ChoiceItem).choices, (p.items[0] as ChoiceItem).gold], [[
    "oxygen",
    "carbon dioxide",
    "helium",
  ], 1]);
  assertEquals((p.items[1] as ChoiceItem).gold, 0);
});

Deno.test("eval task files: generation scored by exact match, a hub split, and errors with their fix", async () => {
  const gen = await writeTask("sum.json", {
    data: { file: "sum.jsonl" },
    prompt: "{{ a }} + {{ b }} =",
    target: "{{ a + b }}",
    metric: "exact_match",
    until: ["\n"],
    max_tokens: 8,
  }, { "sum.jsonl": '{"a": 2, "b": 3}\n' });
  const g = await loadTaskFile(gen, LOC);
  const item = g.items[0] as GenerateItem;
  assertEquals([g.kind, item.gold, rawPrompt(item.build(0)), g.grader!.stop, g.grader!.maxTokens], [
    "generate",
    "5",
    "2 + 3 =",
    ["\n"],
    8,
  ]);
  assertEquals(g.grader!.grade(" 5 ", "5").scores, { exact_match: 1 });
  assertEquals(g.grader!.grade("6", "5").scores, { exact_match: 0 });

  const hub = await writeTask("hubarc.json", {
    data: { hub: "allenai/ai2_arc", config: "ARC-Challenge", split: "test" },
    prompt: "{{ question }}",
    choices: "choices.text",
    target: "{{ answerKey }}",
    metric: "acc",
  });
  // answerKey "B" is not a choice's text: refused with the fix
  await rejects(
    loadTaskFile(hub, LOC),
    (e: Error) => e instanceof EvalError && /target "B" is neither/.test(e.message),
  );

  const cases: [unknown, RegExp][] = [
    [{ data: { file: "x.jsonl" }, target: "t", metric: "acc" }, /"prompt" \(a jinja template\) is missing/],
    [{ data: {}, prompt: "p", target: "t", metric: "acc" }, /"data" needs "file"/],
    [
      { data: { file: "sum.jsonl" }, prompt: "p", target: "t", metric: "acc" },
      /"metric" must be exact_match for a generation task/,
    ],
    [
      { data: { file: "sum.jsonl" }, prompt: "{{ a", target: "t", metric: "exact_match" },
      /prompt is not a valid jinja template/,
    ],
    [{ data: { file: "sum.txt" }, prompt: "p", target: "t", metric: "exact_match" }, /not a \.jsonl, \.json/],
    [
      { data: { file: "sum.jsonl" }, prompt: "{{ a.nope() }}", target: "t", metric: "exact_match" },
      /row 0: a template failed/,
    ],
  ];
  for (const [spec, pattern] of cases) {
    const path = await writeTask("bad.json", spec, { "sum.txt": "x" });
    await rejects(
      loadTaskFile(path, LOC),
      (e: Error) => e instanceof EvalError && pattern.test(e.message) && /--help/.test(e.message),
      String(pattern),
    );
  }
});
