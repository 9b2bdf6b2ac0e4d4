/**
 * Accepting sampled tokens on the host: each one releases text (complete UTF-8, held while it could start
 * a stop string) and may end generation — end of sequence, a stop string, the token budget, an abort.
 */

import type { TextTokenizer } from "../tokenizer/tokenizer.ts";
import { StreamDecoder } from "../tokenizer/detokenizer.ts";
import type { GenerateOptions, StopReason, TokenEvent } from "./generate.ts";
import { StopMatcher } from "./stops.ts";

/** Tokens a generation may produce: bounded by max tokens and by the context. */
export interface TokenBudget {
  maxTokens: number;
  tokens: number;
}

/** A token at position `context` could never be fed: the context leaves room for context - prompt tokens. */
export function tokenBudget(maxTokens: number, context: number, promptLength: number): TokenBudget {
  return { maxTokens, tokens: Math.min(maxTokens, context - promptLength) };
}

/** What a step sampled for the sequence. */
export interface SampledToken {
  id: number;
  /** Transformer layers the step ran. */
  layers: number;
  /** Route words (bit l = routed layer l ran). */
  routes: ArrayLike<number>;
  /** DMTD: the pass ran every layer (a prompt's or a cycle head's). */
  head?: boolean;
}

/** One generation's accepted tokens: their text so far, their count and layers, and why they stopped. */
export class TokenAcceptor {
  /** Text released so far. */
  text = "";
  generated = 0;
  /** Layers of the accepted tokens, summed. */
  layerSum = 0;
  /** Why generation ended; null while it goes on. */
  stopReason: StopReason | null = null;
  private readonly decoder: StreamDecoder;
  private readonly stops: StopMatcher;

  constructor(
    private readonly tokenizer: TextTokenizer,
    /** The model's routed layers (one route bit each). */
    private readonly routingLayers: readonly number[],
    private readonly opts: Pick<GenerateOptions, "ignoreEos" | "stop" | "signal">,
    private readonly budget: TokenBudget,
  ) {
    this.decoder = new StreamDecoder(tokenizer, { skipSpecial: true });
    this.stops = new StopMatcher(opts.stop);
  }

  /** Takes the next sampled token: its event, or null for an end of sequence that releases no text. */
  accept(t: SampledToken): TokenEvent | null {
    this.generated++;
    this.layerSum += t.layers;
    const routes = this.routingLayers.map((_, k) => ((t.routes[k >> 5] >>> (k & 31)) & 1) === 1);
    const text = this.release(t.id);
    if (text === null) return null;
    this.text += text;
    const event: TokenEvent = { i: this.generated - 1, id: t.id, text, layers: t.layers, routes };
    if (t.head !== undefined) event.head = t.head;
    return event;
  }

  /** The text token `id` releases, setting the stop reason when it ends generation (null: nothing to show). */
  private release(id: number): string | null {
    if (!this.opts.ignoreEos && this.tokenizer.eosIds.includes(id)) {
      this.stopReason = "eos";
      const rest = this.rest();
      return rest ? rest : null;
    }
    let text = this.stops.push(this.decoder.push(id));
    if (this.stops.stopped) {
      this.stopReason = "stop";
    } else if (this.generated >= this.budget.tokens) {
      this.stopReason = this.generated >= this.budget.maxTokens ? "max_tokens" : "context";
      text += this.rest();
    } else if (this.opts.signal?.aborted) {
      this.stopReason = "aborted";
      text += this.rest();
    }
    return text;
  }

  /** Everything still held: the stop matcher's tail, then the detokenizer's unfinished bytes. */
  private rest(): string {
    return this.stops.flush() + this.decoder.flush();
  }
}
