/** A sequence with its KV cache slot: what a chat keeps between turns. */

import type { Engine } from "../engine/engine.ts";

export class Session {
  /** Tokens of the conversation so far (prompt and accepted generations). */
  tokens: number[] = [];
  /** How many leading tokens have valid K/V in the slot. */
  kvValid = 0;
  /** DMTD: how many leading tokens have valid K/V in the thinking layers (≤ kvValid). */
  thinkValid = 0;
  constructor(readonly engine: Engine, readonly slot: number) {}

  reset(): void {
    this.tokens = [];
    this.kvValid = 0;
    this.thinkValid = 0;
  }

  /** Leading prompt tokens whose K/V the slot already holds; at least one token must run to get logits. */
  reusablePrefix(ids: number[]): number {
    let reuse = 0;
    const limit = Math.min(this.kvValid, ids.length - 1);
    while (reuse < limit && this.tokens[reuse] === ids[reuse]) reuse++;
    return reuse;
  }

  /** The prompt's K/V is written: the conversation is now the prompt, generated tokens follow. */
  promptDone(ids: number[]): void {
    this.tokens = ids.slice();
    this.kvValid = ids.length;
    this.thinkValid = ids.length;
  }

  /**
   * The last accepted token was never fed (or was fed by a dropped step): its K/V is not counted. `thinkValid`:
   * DMTD, the thinking layers' valid length the generation's steps left.
   */
  rollBack(thinkValid = Infinity): void {
    this.kvValid = this.tokens.length - 1;
    this.thinkValid = Math.min(thinkValid, this.kvValid);
  }
}
