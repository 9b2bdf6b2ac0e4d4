/**
 * The built-in tasks' prompts on real items of ../shared/data/eval, as exact strings in lm-evaluation-harness's
 * formats (arc_easy/arc_challenge, hellaswag with its preprocessing, winogrande's partial scoring, mmlu's
 * default 5-shot template, gsm8k's few-shot Question/Answer turns, xsum's prompt), lm-eval's context /
 * continuation split, GSM8K answer extraction, ROUGE against hand-worked cases, and --modes.
 */

import { deepStrictEqual as assertEquals, ok, throws } from "node:assert/strict";
import { type DataLocator, DEFAULT_DATA_DIR, locateData } from "../src/eval/data.ts";
import { builtinTask } from "../src/eval/tasks/registry.ts";
import type { ChoiceItem, EvalItem, GenerateItem, LoadedTask } from "../src/eval/task.ts";
import { chatMessages, rawPrompt } from "../src/eval/task.ts";
import { capitalize, hellaswagFromHub, preprocess, restoreCtxB } from "../src/eval/tasks/hellaswag.ts";
import { encodePair, splitPair } from "../src/eval/requests.ts";
import { exactMatch, extractAnswer, normalizeAnswer } from "../src/eval/answers.ts";
import { rougeScores, rougeTokens } from "../src/eval/rouge.ts";
import { choiceOutcome } from "../src/eval/metrics.ts";
import { defaultModes, type ModelCaps, parseModes } from "../src/eval/modes.ts";
import { UsageError } from "../src/errors.ts";
import { FakeScorer } from "./eval_fake.ts";

const DATA = new URL("../../shared/data/eval", import.meta.url).pathname;
const LOC: DataLocator = { dir: DATA, explicit: true, cacheDir: "/nonexistent" };

const loaded = new Map<string, Promise<LoadedTask>>();
function task(id: string, shots: number | null = null): Promise<LoadedTask> {
  const key = `${id}/${shots}`;
  if (!loaded.has(key)) loaded.set(key, builtinTask(id)!.load(LOC, { shots, seed: 1234 }));
  return loaded.get(key)!;
}

function choice(it: EvalItem): ChoiceItem {
  ok(it.kind === "choice");
  return it;
}

Deno.test("eval tasks: ARC — 'Question: …\\nAnswer:' and ' {choice}', 3 to 5 choices, gold from answerN", async () => {
  const easy = await task("arc_easy");
  assertEquals([easy.items.length, easy.primary, easy.metrics], [2376, "acc_norm", ["acc", "acc_norm"]]);
  const it = choice(easy.items[0]);
  assertEquals(it.build(0), {
    contexts: [
      "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:",
    ],
    continuations: [
      " Sunlight is the source of energy for nearly all ecosystems.",
      " Most ecosystems are found on land instead of in water.",
      " Carbon dioxide is more available than other gases.",
      " The producers in all ecosystems are plants.",
    ],
  });
  assertEquals([it.gold, it.choices[0]], [0, "Sunlight is the source of energy for nearly all ecosystems."]);
  const three = choice(easy.items[93]);
  assertEquals([three.choices, three.gold], [["decrease", "increase", "remain the same"], 1]);
  const hard = await task("arc_challenge");
  assertEquals(hard.items.length, 1172);
  assertEquals(choice(hard.items[0]).build(0).contexts, [
    "Question: An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely effect of this increase in rotation?\nAnswer:",
  ]);
  assertEquals(choice(hard.items[0]).gold, 2);
});

Deno.test("eval tasks: HellaSwag — 'label: ctx_a Ctx_b' preprocessed, ' {ending}' continuations", async () => {
  const hs = await task("hellaswag");
  assertEquals(hs.items.length, 10042);
  const it = choice(hs.items[0]);
  assertEquals(it.build(0), {
    contexts: ["Roof shingle removal: A man is sitting on a roof. He"],
    continuations: [
      " is using wrap to wrap a pair of skis.",
      " is ripping level tiles off.",
      " is holding a rubik's cube.",
      " starts pulling up roofing on a roof.",
    ],
  });
  assertEquals(it.gold, 3);
  assertEquals(choice(hs.items[1]).build(0).contexts, [
    "Clean and jerk: A lady walks to a barbell. She bends down and grabs the pole. The lady",
  ]);
  // A WikiHow item whose bracketed link lm-eval's preprocess removes.
  const wiki = choice(hs.items[3505]).build(0).contexts[0];
  ok(wiki.includes("Visit a site like to find loads") && !wiki.includes("["), wiki);
  // The hub's fields, processed as lm-eval's process_docs does.
  const doc = hellaswagFromHub({
    activity_label: "Home and Garden",
    ctx_a: "[header] How to plant a tree [title] Dig a hole.",
    ctx_b: "the Hole should be deep",
    endings: ["[step] Water it.", " Then  wait. "],
    label: "1",
  });
  assertEquals(doc, {
    query: "Home and Garden: How to plant a tree. Dig a hole. The hole should be deep",
    // lm-eval strips before removing tags, so a leading tag leaves its space (kept, as lm-eval keeps it)
    endings: [" Water it.", "Then wait."],
    gold: 1,
  });
  assertEquals([capitalize("the LADY"), capitalize("5 the guy"), capitalize("")], [
    "The lady",
    "5 the guy",
    "",
  ]);
  assertEquals(
    restoreCtxB("Playing saxophone: 1 a guy is playing. 2 a guy"),
    "Playing saxophone: 1 a guy is playing. 2 a guy",
  );
  assertEquals(preprocess("  a [title] b [step] c  "), "a. b c");
});

Deno.test("eval tasks: WinoGrande — the option fills the blank, the rest of the sentence is the continuation", async () => {
  const wg = await task("winogrande");
  assertEquals([wg.items.length, wg.metrics], [1267, ["acc"]]);
  const it = choice(wg.items[0]);
  const contexts = [
    "Sarah was a much better surgeon than Maria so Sarah",
    "Sarah was a much better surgeon than Maria so Maria",
  ];
  assertEquals(it.build(0), {
    contexts,
    continuations: [" always got the easier cases.", " always got the easier cases."],
  });
  assertEquals([it.gold, it.choices], [1, contexts]);
  assertEquals(choice(wg.items[2]).build(0).continuations[0], " was't ruined.");
});

Deno.test("eval tasks: MMLU — description, the first k dev questions with their letters, the question, ' A'…' D'", async () => {
  const mmlu = await task("mmlu");
  assertEquals([mmlu.items.length, mmlu.shots, mmlu.primary], [14079, 5, "acc"]);
  const it = choice(mmlu.items[0]);
  assertEquals([it.group, it.choices, it.gold, it.shots], ["abstract_algebra", ["A", "B", "C", "D"], 1, 5]);
  const q = "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\n" +
    "A. 0\nB. 4\nC. 2\nD. 6\nAnswer:";
  const head = "The following are multiple choice questions (with answers) about abstract algebra.\n\n";
  assertEquals(it.build(0), { contexts: [head + q], continuations: [" A", " B", " C", " D"] });
  assertEquals(
    it.build(2).contexts[0],
    head +
      "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: B\n\n" +
      "Statement 1 | If aH is an element of a factor group, then |aH| divides |a|. Statement 2 | If H and K " +
      "are subgroups of G then HK is a subgroup of G.\nA. True, True\nB. False, False\nC. True, False\n" +
      "D. False, True\nAnswer: B\n\n" + q,
  );
  const full = it.build(5).contexts[0];
  assertEquals(full.split("\n\n").length, 7, "description, 5 examples, the question");
  const subjects = new Set(mmlu.items.map((i) => i.group));
  assertEquals(subjects.size, 57);
  const three = await task("mmlu", 3);
  assertEquals([three.shots, choice(three.items[0]).shots], [3, 3]);
});

Deno.test("eval tasks: GSM8K — 'Question: …\\nAnswer:' turns, raw or as chat messages; the last 8 test problems are the examples", async () => {
  const g = await task("gsm8k");
  assertEquals([g.items.length, g.shots, g.primary], [1311, 8, "exact_match"]);
  const it = g.items[0] as GenerateItem;
  ok(it.kind === "generate" && it.gold.endsWith("#### 18"));
  const one = it.build(1);
  const exampleQ =
    "Question: The caretaker of the docks needs to buy some new line. He wants 3 feet of line for every " +
    "foot of dock. Right now, there is 200 feet of dock, and he has 6 feet of new line. How many feet of line " +
    "does he need to buy in total?\nAnswer:";
  const exampleA =
    "200*3 = <<200*3=600>>600 feet of line.\nThe caretaker needs to buy 600-6 = <<600-6=594>>594 feet of line.\n#### 594";
  const q =
    "Question: Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins " +
    "for her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck " +
    "egg. How much in dollars does she make every day at the farmers' market?\nAnswer:";
  assertEquals(rawPrompt(one), `${exampleQ} ${exampleA}\n\n${q}`);
  assertEquals(chatMessages(one), [
    { role: "user", content: exampleQ },
    { role: "assistant", content: exampleA },
    { role: "user", content: q },
  ]);
  assertEquals(it.build(8).shots.length, 8);
  assertEquals(g.grader!.stop, ["Question:", "</s>", "<|im_end|>"]);
  await builtinTask("gsm8k")!.load(LOC, { shots: 9, seed: 0 }).then(
    () => ok(false, "9 shots from the local file"),
    (e) => ok(/--shots 8 or less/.test(e.message), e.message),
  );
});

Deno.test("eval tasks: XSum — the file's '###\\nArticle: …' prompt, greedy to '###', ROUGE against the summary", async () => {
  const x = await task("xsum");
  assertEquals([x.items.length, x.metrics, x.primary], [1000, ["rouge1", "rouge2", "rougeL"], "rougeL"]);
  const it = x.items[0] as GenerateItem;
  const p = rawPrompt(it.build(0));
  ok(p.startsWith("###\nArticle: Prison Link Cymru had 1,099 referrals"), p.slice(0, 40));
  ok(p.endsWith("in the next five years.\n\nSummarize the above article in 1 sentence.\n"));
  assertEquals(
    it.gold,
    'There is a "chronic" need for more housing for prison leavers in Wales, according to a charity.',
  );
  const graded = x.grader!.grade(` ${it.gold}\n`, it.gold);
  assertEquals(graded.scores, { rouge1: 1, rouge2: 1, rougeL: 1 });
});

Deno.test("eval: the data folder is --data, else $FLEXIDEPTH_DATA, else ../shared/data/eval if it exists", async () => {
  const saved = Deno.env.get("FLEXIDEPTH_DATA");
  try {
    Deno.env.delete("FLEXIDEPTH_DATA");
    assertEquals(await locateData(DATA, "/c"), { dir: DATA, explicit: true, cacheDir: "/c" });
    Deno.env.set("FLEXIDEPTH_DATA", DATA);
    assertEquals(await locateData(undefined, "/c"), { dir: DATA, explicit: true, cacheDir: "/c" });
    Deno.env.delete("FLEXIDEPTH_DATA");
    // the tests run in the repository, beside ../shared
    assertEquals(await locateData(undefined, "/c"), {
      dir: DEFAULT_DATA_DIR,
      explicit: false,
      cacheDir: "/c",
    });
    await locateData("/nonexistent-folder").then(
      () => ok(false),
      (e) => ok(/does not exist/.test(e.message)),
    );
  } finally {
    saved === undefined ? Deno.env.delete("FLEXIDEPTH_DATA") : Deno.env.set("FLEXIDEPTH_DATA", saved);
  }
});

Deno.test("eval: contexts and continuations split as lm-eval's _encode_pair", () => {
  assertEquals(splitPair("Answer: ", "A"), ["Answer:", " A"]);
  assertEquals(splitPair("Answer:", " A"), ["Answer:", " A"]);
  assertEquals(splitPair("x \n", "y"), ["x", " \ny"]);
  const s = new FakeScorer();
  const pair = encodePair(s, "Question: why?\nAnswer:", " Because it is.");
  assertEquals(s.decode(pair.context), "<s>Question: why?\nAnswer:");
  assertEquals(s.decode(pair.continuation), " Because it is.");
  // acc_norm divides by characters of the choice (not of the continuation with its space)
  assertEquals(choiceOutcome([-3, -4], ["ab", "abcd"], 1), {
    chosen: 0,
    chosen_norm: 1,
    acc: 0,
    acc_norm: 1,
  });
  // -2.5/3 > -1/1 by characters, but -2.5/4 < -1/2 had the space been counted
  assertEquals(choiceOutcome([-2.5, -1], ["abc", "a"], 0).chosen_norm, 0);
  assertEquals(
    choiceOutcome([-2.5, -1], ["abé", "a"], 0).chosen_norm,
    0,
    "characters, not UTF-16 units or bytes",
  );
  assertEquals(choiceOutcome([-2, -2], ["a", "b"], 0).chosen, 0, "ties go to the first, as numpy's argmax");
});

Deno.test("eval: GSM8K answers — '#### 1,234', else the last number; negatives and decimals", () => {
  const cases: [string, string | null, string][] = [
    ["so 1000 + 234 = 1234\n#### 1,234", "1,234", "strict"],
    ["#### 18\n\nQuestion: 5 apples", "18", "strict"],
    ["The answer is 42.", "42.", "flexible"],
    ["I have 3 apples and 12 pears", "12", "flexible"],
    ["it drops to -7", "-7", "flexible"],
    ["#### -12", "-12", "strict"],
    ["each costs $3.50 in total", "$3.50", "flexible"],
    ["#### 0.5", "0.5", "strict"],
    ["no number here", null, "none"],
  ];
  for (const [text, answer, how] of cases) assertEquals(extractAnswer(text), { answer, how }, text);
  assertEquals(normalizeAnswer("$1,234."), "1234");
  assertEquals(normalizeAnswer("Janet sells 9 eggs.\n#### 18"), "18");
  assertEquals(exactMatch("1,234", "x\n#### 1234"), 1);
  assertEquals(exactMatch("42.", "#### 42"), 1);
  assertEquals(exactMatch("$3.50", "#### 3.50"), 1);
  assertEquals(exactMatch("3.5", "#### 3.50"), 0, "exact match compares text, as lm-eval");
  assertEquals(exactMatch(null, "#### 3"), 0);
});

Deno.test("eval: ROUGE-1/2/L F-measures against hand-worked cases", () => {
  const close = (a: number, b: number, what: string) => ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);
  // 5 of 6 unigrams shared; bigrams the-cat, on-the, the-mat: 3 of 5; LCS "the cat on the mat": 5.
  const a = rougeScores("the cat sat on the mat", "the cat was on the mat");
  close(a.rouge1, 5 / 6, "rouge1");
  close(a.rouge2, 3 / 5, "rouge2");
  close(a.rougeL, 5 / 6, "rougeL");
  // Stemmed: [run, dog] against [the, dog, run]: unigrams P 1, R 2/3, F 0.8; no shared bigram; LCS 1: P 1/2, R 1/3.
  assertEquals(rougeTokens("Running dogs, the dog runs!"), ["run", "dog", "the", "dog", "run"]);
  const b = rougeScores("running dogs", "the dog runs");
  close(b.rouge1, 0.8, "rouge1 stemmed");
  close(b.rouge2, 0, "rouge2 stemmed");
  close(b.rougeL, 2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3), "rougeL stemmed");
  // Repeated words count once per match (clipped): cand "the the the", ref "the cat": P 1/3, R 1/2.
  close(rougeScores("the the the", "the cat").rouge1, 2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2), "clipped");
  assertEquals(rougeScores("Hello, World!", "hello world"), { rouge1: 1, rouge2: 1, rougeL: 1 });
  assertEquals(rougeScores("", "hello world"), { rouge1: 0, rouge2: 0, rougeL: 0 });
  assertEquals(rougeScores("!!!", "hello"), { rouge1: 0, rouge2: 0, rougeL: 0 });
});

Deno.test("eval: --modes parse into EvalModes and refuse what the model cannot run, with the fix", () => {
  const flexi = { routed: true, dmtdCycle: null };
  const dmtd = { routed: false, dmtdCycle: 4 };
  const plain = { routed: false, dmtdCycle: null };
  assertEquals(parseModes("full,routed,threshold:0.70", flexi), [
    { name: "full", fullDepth: true },
    { name: "routed", fullDepth: false, threshold: 0.5 },
    { name: "threshold:0.7", fullDepth: false, threshold: 0.7 },
  ]);
  assertEquals(parseModes("full, cycle:2", dmtd), [{ name: "full", fullDepth: true }, {
    name: "cycle:2",
    fullDepth: false,
    cycle: 2,
  }]);
  assertEquals([defaultModes(flexi), defaultModes(dmtd), defaultModes(plain)], [
    "full,routed",
    "full,cycle:4",
    "full",
  ]);
  const refuse = (text: string, caps: ModelCaps, pattern: RegExp) =>
    throws(
      () => parseModes(text, caps),
      (e: Error) => e instanceof UsageError && pattern.test(e.message),
      text,
    );
  refuse("routed", plain, /without routers — .*routing_layers/);
  refuse("threshold:0.6", dmtd, /without routers/);
  refuse("cycle:4", flexi, /not DMTD — .*mtp_horizon/);
  refuse("threshold:2", flexi, /threshold in \[0, 1\]/);
  refuse("threshold:", flexi, /threshold in \[0, 1\]/);
  refuse("cycle:0", dmtd, /1 to 64/);
  refuse("fast", flexi, /unknown mode "fast" — use full, routed/);
  refuse("full,full", flexi, /twice/);
  refuse(" , ", flexi, /empty/);
});
