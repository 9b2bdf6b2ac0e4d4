/**
 * The training data pipeline (src/train/data/), reading: source specs, plain text cut into documents (blank
 * lines, --doc-sep, the size limit), and files streamed in chunks. The other topics are in
 * test/train_data_*.test.ts; all use the stories260K tokenizer (test/train_data_fixtures.ts).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { UsageError } from "../src/errors.ts";
import { readChunks, textDocuments } from "../src/train/data/read.ts";
import { openTrainingData, parseSource } from "../src/train/data/mod.ts";
import { loadSource } from "../src/train/data/sources.ts";
import {
  BOS,
  chunked,
  collect,
  EOS,
  packed,
  sourceOptions,
  stories,
  withTempDir,
} from "./train_data_fixtures.ts";

async function docsOf(text: string, size: number, sep?: string): Promise<string[]> {
  const pieces = await collect(textDocuments(chunked(text, size), sep));
  assert.ok(pieces.every((p) => p.first && p.last), "short documents come whole");
  return pieces.map((p) => p.text);
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
