/**
 * Incremental detokenization that only ever emits complete UTF-8 text, the scheme of
 * text-generation-inference's `decode_token`: keep a small window of ids starting at a prefix
 * offset, decode the window with and without the ids not yet shown, and emit the difference once
 * the text no longer ends in U+FFFD (an incomplete byte sequence or byte-fallback run).
 * Diffing decode(prefix + new) against decode(prefix) — never decode(new) alone — keeps the leading
 * space that sentencepiece decoders strip from the first token of a decode.
 * Each push decodes at most the ids since the previous emission plus the ids of that emission, so
 * the cost per token is bounded, not proportional to the text so far.
 */

import type { TextTokenizer } from "./tokenizer.ts";

/**
 * A run of this many ids that still ends in U+FFFD is invalid UTF-8 (one character spans at most
 * four byte tokens), not an unfinished character: it is emitted as decoded so the window stays small.
 */
const MAX_PENDING = 16;

export class StreamDecoder {
  readonly #tok: TextTokenizer;
  readonly #skipSpecial: boolean;
  /** Ids from the prefix offset on. */
  #window: number[] = [];
  /** Ids at the start of #window whose text was already emitted (TGI's read_offset - prefix_offset). */
  #read = 0;
  /** Text of #window[0, #read). */
  #prefixText = "";

  constructor(tok: TextTokenizer, opts: { skipSpecial?: boolean } = {}) {
    this.#tok = tok;
    this.#skipSpecial = opts.skipSpecial ?? true;
  }

  /** Adds one id; returns the new complete text since the last push ("" when none is complete yet). */
  push(id: number): string {
    this.#window.push(id);
    const text = this.#decode(this.#window);
    const complete = !text.endsWith("\uFFFD") || this.#window.length - this.#read >= MAX_PENDING;
    if (!complete || text.length <= this.#prefixText.length) return "";
    return this.#emit(text);
  }

  /** Returns whatever is still held back (an unfinished character decodes as U+FFFD) and resets. */
  flush(): string {
    let out = "";
    if (this.#read < this.#window.length) {
      const text = this.#decode(this.#window);
      if (text.length > this.#prefixText.length) out = text.slice(this.#prefixText.length);
    }
    this.#window = [];
    this.#read = 0;
    this.#prefixText = "";
    return out;
  }

  /** Emits the text past the prefix and slides the window: the ids just shown become the prefix. */
  #emit(text: string): string {
    const out = text.slice(this.#prefixText.length);
    this.#window = this.#window.slice(this.#read);
    this.#read = this.#window.length;
    this.#prefixText = this.#decode(this.#window);
    return out;
  }

  #decode(ids: number[]): string {
    return this.#tok.decode(ids, { skipSpecial: this.#skipSpecial });
  }
}
