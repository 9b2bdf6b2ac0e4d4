/**
 * The pure parts of `flexidepth experiment` (src/experiment/): the six tasks and their raw prompts, integer
 * lists, answer checks, paragraph files, a truncated tokens.jsonl, and the settings a resumed run must match.
 * The real CLI end to end: test/experiment_cli.test.ts.
 */

import { deepStrictEqual as assertEquals, ok, rejects } from "node:assert/strict";
import { expectedAnswer, parseIntegers } from "../src/experiment/answers.ts";
import { BUNDLED_PARAGRAPHS, integerList, parseParagraphs } from "../src/experiment/inputs.ts";
import { checkSettings, readFinished, type RunSettings } from "../src/experiment/records.ts";
import { buildPrompt, formatList, TASKS } from "../src/experiment/tasks.ts";
import { ExperimentError } from "../src/experiment/errors.ts";

const tmp = await Deno.makeTempDir({ prefix: "flexidepth-experiment-test-" });

Deno.test("experiment: six tasks, raw prompt = instruction, blank line, input, blank line", () => {
  assertEquals(TASKS.map((t) => [t.id, t.kind, t.paper_mean_layers]), [
    ["copy", "text", 21.95],
    ["summarize", "text", 28.65],
    ["continue", "text", 30.27],
    ["repeat", "math", 20.09],
    ["sum", "math", 22.45],
    ["product", "math", 23.9],
  ]);
  const copy = TASKS[0], sum = TASKS[4];
  assertEquals(buildPrompt(copy, "A b.", false).input, "Please copy this paragraph:\n\nA b.\n\n");
  assertEquals(
    buildPrompt(sum, [12, 34], false).input,
    "Please calculate the sum of this list:\n\n[12, 34]\n\n",
  );
  assertEquals(buildPrompt(copy, "A b.", true).input, [{
    role: "user",
    content: "Please copy this paragraph:\n\nA b.",
  }]);
  ok(BUNDLED_PARAGRAPHS.length >= 20);
});

Deno.test("experiment: integer lists are 5–10 integers in [10, 99], a function of (seed, sample)", () => {
  const lengths = new Set<number>();
  for (let i = 0; i < 300; i++) {
    const l = integerList(7, i);
    lengths.add(l.length);
    ok(l.length >= 5 && l.length <= 10, `length ${l.length}`);
    ok(l.every((x) => Number.isInteger(x) && x >= 10 && x <= 99), `values ${l}`);
    assertEquals(integerList(7, i), l);
  }
  assertEquals([...lengths].sort((a, b) => a - b), [5, 6, 7, 8, 9, 10]);
  ok(JSON.stringify(integerList(7, 0)) !== JSON.stringify(integerList(8, 0)), "seed changes the lists");
  ok(JSON.stringify(integerList(7, 0)) !== JSON.stringify(integerList(7, 1)), "samples differ");
});

Deno.test("experiment: math answers are checked against the true repeat, sum and product", () => {
  assertEquals(parseIntegers("a 12, b 1,234,567 and -3; 12,34"), [12n, 1234567n, -3n, 12n, 34n]);
  const list = [10, 20, 99];
  const sum = expectedAnswer("sum", list)!;
  assertEquals(sum.expected, "129");
  ok(sum.check("10 + 20 + 99 = 129"));
  ok(!sum.check("The sum is 128."));
  ok(!sum.check("129, no wait, 130"));
  const product = expectedAnswer("product", [99, 98, 97, 96, 95, 94, 93, 92, 91, 90])!;
  assertEquals(product.expected, "56534085859976524800"); // beyond 2^53: exact as a bigint
  ok(product.check("The product is 56,534,085,859,976,524,800."));
  ok(!product.check("56534085859976527872"));
  const repeat = expectedAnswer("repeat", list)!;
  ok(repeat.check(`Here it is, 5 times: ${Array(5).fill(formatList(list)).join(" ")}`));
  ok(!repeat.check(Array(4).fill(formatList(list)).join(" ")));
  assertEquals(expectedAnswer("copy", list), null);
});

Deno.test("experiment: paragraph files: one per line, or JSON Lines with text (or XSum's document)", () => {
  assertEquals(parseParagraphs("first one\n\n  second  \n", "f"), ["first one", "second"]);
  assertEquals(parseParagraphs('{"text":"a"}\n{"document":"b","summary":"s"}\n', "f"), ["a", "b"]);
  for (
    const [bad, msg] of [["", /no paragraphs/], ['{"text":"a"}\n{oops\n', /line 2 is not valid JSON/], [
      '{"title":"a"}\n',
      /line 1 has no "text"/,
    ]] as const
  ) {
    try {
      parseParagraphs(bad, "f");
      ok(false, "should throw");
    } catch (e) {
      ok(e instanceof ExperimentError && msg.test(e.message), String(e));
    }
  }
});

Deno.test("experiment: a truncated last line of tokens.jsonl is dropped and cut from the file", async () => {
  const path = `${tmp}/trunc.jsonl`;
  const line = JSON.stringify({ task: "sum", sample: 0, tokens: [] });
  await Deno.writeTextFile(path, `${line}\n{"task":"sum","sam`);
  const done = await readFinished(path);
  assertEquals([...done.keys()], ["sum#0"]);
  assertEquals(await Deno.readTextFile(path), `${line}\n`);
  await Deno.writeTextFile(path, `{broken\n${line}\n`);
  await rejects(readFinished(path), /line 1 is not valid JSON/);
});

Deno.test("experiment: a resumed run must match the settings in run.json; older files without quant mean none", async () => {
  const dir = await Deno.makeTempDir({ dir: tmp });
  const settings: RunSettings = {
    model: "/m",
    seed: 0,
    max_tokens: 8,
    chat: false,
    threshold: 0.5,
    full_depth: false,
    quant: "none",
    cycle: null,
    paragraphs_sha256: "x",
  };
  const { quant: _, ...older } = settings;
  await Deno.writeTextFile(`${dir}/run.json`, JSON.stringify(older));
  await checkSettings(`${dir}/run.json`, `${dir}/tokens.jsonl`, settings);
  await rejects(
    checkSettings(`${dir}/run.json`, `${dir}/tokens.jsonl`, { ...settings, quant: "q8" }),
    /other settings \(quant: undefined there, "q8" now\)/,
  );
  await rejects(
    checkSettings(`${dir}/run.json`, `${dir}/tokens.jsonl`, { ...settings, threshold: 0.6 }),
    /threshold: 0\.5 there, 0\.6 now/,
  );
});
