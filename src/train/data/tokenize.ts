/**
 * Documents → token ids, with the boundary policy of the packed corpus: a raw document starts with BOS (when
 * the model's prompts do) and every document ends with exactly one EOS (`eosIds[0]`). A chat is the model's
 * chat template, which writes its own BOS and turn markers; when the last turn already ends in an EOS id (Qwen's
 * `<|im_end|>`, Llama-3's `<|eot_id|>`) the document ends there instead of getting a second.
 */

import type { ChatMessage, TextTokenizer } from "../../tokenizer/tokenizer.ts";
import { DataError } from "./errors.ts";

/** A growing u32 array: appends without reallocating each time. */
export class U32Buffer {
  #data = new Uint32Array(1 << 16);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(ids: ArrayLike<number>): void {
    this.#reserve(ids.length);
    this.#data.set(ids, this.#length);
    this.#length += ids.length;
  }

  pushOne(id: number): void {
    this.#reserve(1);
    this.#data[this.#length++] = id;
  }

  /** The contents, trimmed to their length (a copy, so the spare capacity is freed). */
  finish(): Uint32Array {
    return this.#data.slice(0, this.#length);
  }

  #reserve(n: number): void {
    if (this.#length + n <= this.#data.length) return;
    let cap = this.#data.length * 2;
    while (cap < this.#length + n) cap *= 2;
    const grown = new Uint32Array(cap);
    grown.set(this.#data.subarray(0, this.#length));
    this.#data = grown;
  }
}

/** The EOS every document ends with; a tokenizer without one cannot mark document ends. */
export function documentEos(tok: TextTokenizer): number {
  const eos = tok.eosIds[0];
  if (eos === undefined) {
    throw new DataError(
      `${tok.name} has no EOS token, so packed documents could not be told apart`,
      "give eos_token_id in config.json or generation_config.json (or eos_token in tokenizer_config.json)",
    );
  }
  return eos;
}

/** One piece of raw text: BOS before a document's first piece (when the model uses one), EOS after its last. */
export function encodePiece(tok: TextTokenizer, text: string, first: boolean, last: boolean): number[] {
  const ids = first ? tok.encodePrompt(text) : encodeContinuation(tok, text);
  if (last) ids.push(documentEos(tok));
  return ids;
}

/**
 * Text that continues a document: sentencepiece-style tokenizers put a space ("▁") before every text they
 * encode, so the piece is encoded after an anchor and the anchor's ids dropped (plain encoding when the anchor
 * merged with the text).
 */
function encodeContinuation(tok: TextTokenizer, text: string): number[] {
  const anchor = tok.encodeText("a");
  const ids = tok.encodeText(`a${text}`);
  return anchor.every((id, i) => ids[i] === id) ? ids.slice(anchor.length) : tok.encodeText(text);
}

/**
 * A whole conversation, ending in exactly one EOS. When the template closes the last turn with an EOS id, the
 * document ends there: what follows (Qwen's newline, or the empty assistant header some Llama-3 templates add
 * whatever add_generation_prompt says) is dropped. Otherwise EOS is appended.
 */
export function encodeChatDocument(tok: TextTokenizer, messages: ChatMessage[]): number[] {
  const ids = tok.encodeChat(messages, { addGenerationPrompt: false });
  let end = ids.length;
  while (end > 0 && !tok.eosIds.includes(ids[end - 1])) end--;
  const tail = tok.decode(ids.slice(end), { skipSpecial: false });
  const last = messages[messages.length - 1].content.trim();
  // A tail holding the last message means the template left that turn open: it is kept, and closed by EOS.
  if (end > 0 && (last === "" || !tail.includes(last))) {
    ids.length = end;
    return ids;
  }
  ids.push(documentEos(tok));
  return ids;
}

const PROBE_TEXT = "Once upon a time, 42 × 7 = 294.\n\n  日本語 🎉 <s></s>\tend";
const PROBE_CHAT: ChatMessage[] = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Hi there" },
  { role: "assistant", content: "Hello!" },
];

/**
 * What the tokenizer does, as a digest: the cache is valid only for the same ids from the same text. The
 * ids of a probe text and chat, the special ids, the vocabulary's size and a spread of its token texts.
 */
export async function tokenizerFingerprint(tok: TextTokenizer): Promise<string> {
  const spread = [0, 1, 2, 3, 100, tok.vocabSize >> 1, tok.vocabSize - 1].filter((i) => i < tok.vocabSize);
  const facts = {
    vocab: tok.vocabSize,
    bos: tok.promptBos,
    eos: tok.eosIds,
    text: tok.encodePrompt(PROBE_TEXT),
    chat: tok.hasChatTemplate ? tok.encodeChat(PROBE_CHAT, { addGenerationPrompt: false }) : null,
    variables: tok.chatVariables,
    pieces: spread.map((id) => tok.tokenText(id)),
  };
  return await sha256Hex(JSON.stringify(facts));
}

export async function sha256Hex(data: string | Uint32Array): Promise<string> {
  const bytes = typeof data === "string"
    ? new TextEncoder().encode(data)
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...hash].map((b) => b.toString(16).padStart(2, "0")).join("");
}
