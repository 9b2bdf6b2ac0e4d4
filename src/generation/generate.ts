/**
 * generate(): text in, an async stream of annotated tokens out, then a summary.
 * tokenizer → engine (prefill, pipelined decode) → stop checks on the host → detokenizer.
 * The host learns of a stop a few steps late; tokens computed past it are dropped, and the sequence's
 * valid KV length is rolled back so the next turn continues exactly as if they never ran.
 */

import { InputError } from "../errors.ts";
import type { Engine, PendingStep } from "../engine/engine.ts";
import type { SamplingOptions } from "../engine/sampling.ts";
import type { ChatMessage, TextTokenizer } from "../tokenizer/tokenizer.ts";
import { StreamDecoder } from "../tokenizer/detokenizer.ts";
import { StopMatcher } from "./stops.ts";

/** Prefill steps whose route readbacks may be in flight at once (prompts of many one-row steps). */
const PREFILL_READBACKS = 8;
/** Most decode steps the automatic window keeps in flight. */
const AUTO_MAX_DEPTH = 32;

export interface GenerateOptions {
  maxTokens?: number;
  /** 0 = greedy. */
  temperature?: number;
  /** 0 = off. */
  topK?: number;
  /** 1 = off. */
  topP?: number;
  seed?: number;
  stop?: string[];
  /** FlexiDepth: run a routed layer when its gate g > threshold (default 0.5, as released). */
  threshold?: number;
  /** FlexiDepth: run every routed layer in full with g = 1 — the base model. */
  fullDepth?: boolean;
  /** Keep going past end-of-sequence tokens (benchmarks). */
  ignoreEos?: boolean;
  /** Stops generation at the next token (stop reason "aborted"); what was generated is kept. */
  signal?: AbortSignal;
  /** Decode steps kept in flight: a number (1 = wait for every token) or "auto". */
  window?: number | "auto";
}

export interface TokenEvent {
  /** Index of the generated token (0-based). */
  i: number;
  id: number;
  /** Text this token releases (may be "" while a multi-byte character or a possible stop string is pending). */
  text: string;
  /** Transformer layers the forward pass that produced this token ran. */
  layers: number;
  /** Run bit per routed layer (empty for a plain model). */
  routes: boolean[];
}

export type StopReason = "eos" | "stop" | "max_tokens" | "context" | "aborted";

export interface GenerationSummary {
  promptIds: number[];
  /** Layers used at each prompt position that ran (prefill routing; reused positions are absent). */
  promptLayers: number[];
  promptTokens: number;
  /** Prompt tokens whose KV was reused from the session's earlier turns. */
  reusedTokens: number;
  generatedTokens: number;
  stopReason: StopReason;
  text: string;
  prefillMs: number;
  decodeMs: number;
  prefillTokensPerSec: number;
  decodeTokensPerSec: number;
  meanLayers: number;
  windowDepth: number;
  readbackWaitMs: number;
}

/** A sequence with its KV cache slot: what a chat keeps between turns. */
export class Session {
  /** Tokens of the conversation so far (prompt and accepted generations). */
  tokens: number[] = [];
  /** How many leading tokens have valid K/V in the slot. */
  kvValid = 0;
  constructor(readonly engine: Engine, readonly slot: number) {}

  reset(): void {
    this.tokens = [];
    this.kvValid = 0;
  }
}

/** Raw text (BOS added), chat messages (the model's template), or token ids as they are. */
export type PromptInput = string | ChatMessage[] | { ids: number[] };

export class Generation implements AsyncIterable<TokenEvent> {
  readonly summary: Promise<GenerationSummary>;
  private resolveSummary!: (s: GenerationSummary) => void;
  private rejectSummary!: (e: unknown) => void;
  private started = false;
  /** The prompt's token ids, known once generation has started. */
  promptIds: number[] | null = null;

  constructor(
    private readonly tokenizer: TextTokenizer,
    private readonly session: Session,
    private readonly input: PromptInput,
    private readonly opts: GenerateOptions,
  ) {
    this.summary = new Promise((res, rej) => {
      this.resolveSummary = res;
      this.rejectSummary = rej;
    });
    this.summary.catch(() => {}); // the iterator rethrows; don't report twice
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TokenEvent> {
    if (this.started) throw new Error("a Generation can be iterated once");
    this.started = true;
    try {
      yield* this.run();
    } catch (e) {
      this.rejectSummary(e);
      throw e;
    }
  }

  /** Runs to the end, collecting every token (convenience for tests and batch). */
  async collect(): Promise<{ tokens: TokenEvent[]; summary: GenerationSummary }> {
    const tokens: TokenEvent[] = [];
    for await (const t of this) tokens.push(t);
    return { tokens, summary: await this.summary };
  }

  private async *run(): AsyncGenerator<TokenEvent> {
    const { engine } = this.session;
    const tok = this.tokenizer;
    const opts = this.opts;
    const cfg = engine.config;
    const maxTokens = opts.maxTokens ?? 256;
    const ctx = engine.context;

    const input = this.input;
    const ids = typeof input === "string"
      ? tok.encodePrompt(input)
      : Array.isArray(input)
      ? tok.encodeChat(input)
      : input.ids.slice();
    this.promptIds = ids;
    if (ids.length === 0) throw new InputError("the prompt is empty", "give some text");
    if (ids.length >= ctx) {
      throw new InputError(
        `the prompt has ${ids.length} tokens but the context holds ${ctx}`,
        "shorten the prompt or raise --context",
      );
    }
    const bad = ids.find((id) => id < 0 || id >= cfg.vocabSize);
    if (bad !== undefined) {
      throw new InputError(`token id ${bad} is outside the model's vocabulary (${cfg.vocabSize})`);
    }

    const sampling: SamplingOptions = {
      temperature: opts.temperature ?? 0,
      topK: opts.topK ?? 0,
      topP: opts.topP ?? 1,
      seed: opts.seed ?? 0,
    };
    engine.setSampling([sampling]);
    engine.forward.routing = { threshold: opts.threshold ?? 0.5, fullDepth: opts.fullDepth ?? false };
    engine.readbackWaitMs = 0;

    // Reuse the K/V of the longest cached prefix; at least one token must run to get logits.
    const s = this.session;
    let reuse = 0;
    const limit = Math.min(s.kvValid, ids.length - 1);
    while (reuse < limit && s.tokens[reuse] === ids[reuse]) reuse++;

    let depth = opts.window === "auto" || opts.window === undefined
      ? 4
      : Math.max(1, Math.floor(opts.window));
    const auto = opts.window === "auto" || opts.window === undefined;
    // Tokens the whole generation may produce: bounded by max tokens and by the context (a token at
    // position ctx could never be fed).
    const budget = Math.min(maxTokens, ctx - ids.length);
    // Readback slots for every step that can be in flight, made now: memory stays flat while tokens stream.
    engine.reserveReadbacks(Math.max(PREFILL_READBACKS, Math.min(auto ? AUTO_MAX_DEPTH : depth, budget)) + 1);

    // Prefill in chunks; the last chunk samples the first token. Routed models also bring back every
    // prompt position's route bits (their layer counts).
    const t0 = performance.now();
    const routed = cfg.routingLayers.length > 0;
    const prefill: PendingStep[] = [];
    const promptLayers: number[] = [];
    const countLayers = (words: Uint32Array) => {
      for (let i = 0; i < words.length; i += engine.routeWords) {
        let kept = 0;
        for (let w = 0; w < engine.routeWords; w++) kept += popcount(words[i + w]);
        promptLayers.push(cfg.numLayers - cfg.routingLayers.length + kept);
      }
    };
    for (let c = reuse; c < ids.length; c += engine.prefillRows) {
      const chunk = ids.slice(c, c + engine.prefillRows);
      const last = c + chunk.length === ids.length;
      const rows = chunk.map((_, i) => ({ slot: s.slot, pos: c + i }));
      const p = engine.submitStep(rows, last ? [chunk.length - 1] : [], chunk, routed);
      if (p) prefill.push(p);
      // One-row prefill steps of a long prompt: a bounded number of readbacks in flight, not one per token.
      while (!last && prefill.length > PREFILL_READBACKS) {
        countLayers((await engine.await(prefill.shift()!)).routesOfRows!);
      }
    }
    const first = prefill.pop()!;
    for (const p of prefill) countLayers((await engine.await(p)).routesOfRows!);
    s.tokens = ids.slice();
    s.kvValid = ids.length;

    // Pipelined decode: step i feeds the token sampled by step i-1 (on the GPU) at position ids.length + i - 1.
    const inFlight: PendingStep[] = [first!];
    let submitted = 1;
    const submitDecode = () => {
      const pos = ids.length + submitted - 1;
      inFlight.push(engine.submitStep([{ slot: s.slot, pos }], [0])!);
      submitted++;
    };

    const decoder = new StreamDecoder(tok, { skipSpecial: true });
    const stops = new StopMatcher(opts.stop);
    let text = "";
    let generated = 0;
    let layerSum = 0;
    let stopReason: StopReason | null = null;
    let prefillMs = 0;
    let tFirst = 0;
    let maxDepth = depth;

    while (stopReason === null) {
      while (inFlight.length < depth && submitted < budget && !opts.signal?.aborted) submitDecode();
      const p = inFlight.shift()!;
      const readback = await engine.await(p);
      if (readback.routesOfRows) countLayers(readback.routesOfRows);
      const r = readback.results[0];
      if (generated === 0) {
        tFirst = performance.now();
        prefillMs = tFirst - t0;
      } else if (auto && generated === 8) {
        // Keep enough steps in flight to cover ~3 readbacks (≥ 11 ms each, resolving in groups) at the
        // measured step time: on the software GPU, stories260K gains up to depth ~16-32 (3.6 ms steps).
        const msPerStep = (performance.now() - tFirst) / generated;
        depth = Math.max(2, Math.min(AUTO_MAX_DEPTH, Math.ceil(36 / Math.max(msPerStep, 0.1)) + 1));
        maxDepth = Math.max(maxDepth, depth);
      }
      generated++;
      s.tokens.push(r.id);
      layerSum += r.layers;
      const routes = cfg.routingLayers.map((_, k) => ((r.routes[k >> 5] >>> (k & 31)) & 1) === 1);
      if (!opts.ignoreEos && tok.eosIds.includes(r.id)) {
        stopReason = "eos";
        const rest = stops.flush() + decoder.flush();
        if (rest) {
          text += rest;
          yield { i: generated - 1, id: r.id, text: rest, layers: r.layers, routes };
        }
        break;
      }
      let release = stops.push(decoder.push(r.id));
      if (stops.stopped) {
        stopReason = "stop";
      } else if (generated >= budget) {
        stopReason = generated >= maxTokens ? "max_tokens" : "context";
        release += stops.flush() + decoder.flush();
      }
      if (stopReason === null && opts.signal?.aborted) {
        stopReason = "aborted";
        release += stops.flush() + decoder.flush();
      }
      text += release;
      yield { i: generated - 1, id: r.id, text: release, layers: r.layers, routes };
    }

    // Drain steps computed past the stop; their tokens are dropped.
    for (const p of inFlight) await engine.await(p);
    // The last accepted token was never fed (or was fed by a dropped step): its K/V is not counted.
    s.kvValid = s.tokens.length - 1;

    const decodeMs = performance.now() - tFirst;
    this.resolveSummary({
      promptIds: ids,
      promptLayers: routed ? promptLayers : ids.slice(reuse).map(() => cfg.numLayers),
      promptTokens: ids.length,
      reusedTokens: reuse,
      generatedTokens: generated,
      stopReason: stopReason!,
      text,
      prefillMs,
      decodeMs,
      prefillTokensPerSec: (ids.length - reuse) / (prefillMs / 1000),
      decodeTokensPerSec: generated > 1 ? (generated - 1) / (decodeMs / 1000) : 0,
      meanLayers: generated ? layerSum / generated : 0,
      windowDepth: maxDepth,
      readbackWaitMs: engine.readbackWaitMs,
    });
  }
}

function popcount(v: number): number {
  let n = 0;
  for (; v; v &= v - 1) n++;
  return n;
}
