/**
 * The training data pipeline (src/train/data/), task samples: math tasks with their exact answers, copy and
 * continue from paragraphs, and a tasks source packed as the experiment's raw prompts with their answers.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { expectedAnswer, parseIntegers, REPEAT_TIMES } from "../src/experiment/answers.ts";
import { integerList } from "../src/experiment/inputs.ts";
import { buildPrompt, taskById } from "../src/experiment/tasks.ts";
import { DataError, parseSource } from "../src/train/data/mod.ts";
import { loadSource } from "../src/train/data/sources.ts";
import { TaskSampler } from "../src/train/data/tasks.ts";
import { packed, sourceOptions, splitDocs, stories, withTempDir } from "./train_data_fixtures.ts";

// ------------------------------------------------------------------------------------------ tasks

Deno.test("tasks: math samples are the prompt with its exact answer", () => {
  const sampler = new TaskSampler(["repeat", "sum", "product"], 7, []);
  for (let i = 0; i < 50; i++) {
    for (const task of ["repeat", "sum", "product"]) {
      const s = sampler.sample(task, i);
      const list = parseIntegers(s.instruction.slice(s.instruction.indexOf("["))).map(Number);
      assert.ok(list.length >= 5 && list.length <= 10 && list.every((n) => n >= 10 && n <= 99));
      assert.equal(s.instruction, taskById(task).template.replace("{list}", `[${list.join(", ")}]`));
      const want = task === "sum"
        ? String(list.reduce((a, b) => a + b, 0))
        : task === "product"
        ? String(list.reduce((a, b) => a * BigInt(b), 1n))
        : Array.from({ length: REPEAT_TIMES }, () => list.join(", ")).join(", ");
      assert.equal(s.answer, want, `${task} ${i}`);
      assert.ok(expectedAnswer(task, list)!.check(s.answer));
    }
  }
  // A function of (seed, task, index); not the experiment's lists for the same seed.
  assert.deepEqual(new TaskSampler(["sum"], 7, []).sample("sum", 3), sampler.sample("sum", 3));
  assert.notDeepEqual(new TaskSampler(["sum"], 8, []).sample("sum", 3), sampler.sample("sum", 3));
  const expList = `[${integerList(7, 3).join(", ")}]`;
  assert.ok(!sampler.sample("sum", 3).instruction.includes(expList));
});

Deno.test("tasks: copy answers with the paragraph, continue with the paragraph's own rest", () => {
  const paragraphs = ["One. Two is here! Three?", "Just one sentence here", "Solo", "  "];
  const sampler = new TaskSampler(["copy", "continue"], 1, paragraphs);
  const heads = new Set<string>();
  for (let i = 0; i < 40; i++) {
    const copy = sampler.sample("copy", i);
    assert.ok(paragraphs.includes(copy.answer));
    assert.equal(copy.instruction, `Please copy this paragraph:\n\n${copy.answer}`);
    const cont = sampler.sample("continue", i);
    const head = cont.instruction.replace("Please continue writing this paragraph:\n\n", "");
    const whole = paragraphs.find((p) => p.startsWith(head) && p.endsWith(cont.answer));
    assert.ok(whole && head !== "" && cont.answer !== "", `continue ${i}: ${head} | ${cont.answer}`);
    assert.equal(`${head} ${cont.answer}`, whole);
    heads.add(head);
  }
  // every sentence end of the first paragraph, and word boundaries of the second; "Solo" cannot be continued
  assert.deepEqual([...heads].sort(), ["Just", "Just one", "Just one sentence", "One.", "One. Two is here!"]);
  // copy takes every paragraph in turn before repeating one
  assert.deepEqual(new Set([0, 1, 2].map((i) => sampler.sample("copy", i).answer)).size, 3);
  assert.throws(() => new TaskSampler(["continue"], 1, ["Solo"]), DataError);
});

Deno.test("tasks: a tasks source packs each sample as the experiment's raw prompt + answer, BOS … EOS", async () => {
  await withTempDir(async (dir) => {
    const paragraphs = join(dir, "p.txt");
    await Deno.writeTextFile(paragraphs, "The cat sat. Then it slept.\n\nA dog ran far away.\n");
    const spec = parseSource(`tasks:copy,continue,sum:6@${paragraphs}`);
    const s = await loadSource(spec, await sourceOptions({ seed: 5 }));
    const sampler = new TaskSampler(["copy", "continue", "sum"], 5, [
      "The cat sat. Then it slept.",
      "A dog ran far away.",
    ]);
    const docs = splitDocs(s.tokens, s.docLens);
    const want = [...sampler.samples(6)];
    assert.equal(docs.length, 18);
    docs.forEach((ids, k) => {
      const sample = want[k];
      const input = sample.task === "sum"
        ? parseIntegers(sample.instruction).map(Number)
        : sample.instruction.split("\n\n")[1];
      const text = buildPrompt(taskById(sample.task), input, false).prompt + sample.answer;
      assert.deepEqual(ids, packed(stories, text), `sample ${k}`);
    });
  });
});
