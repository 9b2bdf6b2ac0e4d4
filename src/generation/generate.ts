/**
 * generate(): text in, an async stream of annotated tokens out, then a summary.
 * tokenizer → engine (prefill, pipelined decode) → stop checks on the host → detokenizer.
 * The host learns of a stop a few steps late; tokens computed past it are dropped, and the sequence's
 * valid KV length is rolled back so the next turn continues exactly as if they never ran.
 */

import { InputError } from "../errors.ts";
import type { SamplingOptions } from "../ops/sample/sampler.ts";
import type { ChatMessage, TextTokenizer } from "../tokenizer/tokenizer.ts";
import type { Session } from "./session.ts";
import { TokenAcceptor, tokenBudget } from "./accept.ts";
import { prefill, PREFILL_READBACKS, PromptLayers } from "./prefill.ts";
import { DecodeWindow } from "./window.ts";
import { type DmtdOptions, DmtdPlanner, DmtdRun, type PlannedStep } from "./dmtd.ts";
import type { SampledToken } from "./accept.ts";
import type { StepResult } from "../engine/engine.ts";

/** Tokens generated when GenerateOptions.maxTokens is not given. */
const DEFAULT_MAX_TOKENS = 256;

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
  /**
   * Every layer for every token: FlexiDepth runs each routed layer in full with g = 1, DMTD the plain stack
   * (no cycle, no re-added embedding) — the base model.
   */
  fullDepth?: boolean;
  /** DMTD: the cycle and the prompt rows' decoding input. */
  dmtd?: DmtdOptions;
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
  /** DMTD: the pass that produced this token ran every layer (the prompt's, or a cycle head's). */
  head?: boolean;
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
  /** DMTD: the cycle τ (0 at full depth), and the rows its heads' thinking layers ran (refill blocks). */
  dmtd?: { cycle: number; refillRows: number };
}

/** Raw text (BOS added), chat messages (the model's template), or token ids as they are. */
export type PromptInput = string | ChatMessage[] | { ids: number[] };

/** When prefill began and when the first token came back (prefill ends, decode begins), in ms. */
interface Timing {
  start: number;
  firstToken: number;
}

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

  /** Prompt → prefill → pipelined decode until a token stops it → drain → summary. */
  private async *run(): AsyncGenerator<TokenEvent> {
    const { engine, slot } = this.session;
    const ids = this.encodePrompt();
    this.configureEngine();
    const reused = this.session.reusablePrefix(ids);
    const budget = tokenBudget(this.opts.maxTokens ?? DEFAULT_MAX_TOKENS, engine.context, ids.length);
    const dmtd = this.dmtdPlan(ids.length);
    const window = new DecodeWindow(engine, slot, ids.length, budget.tokens, this.opts.window, dmtd?.step);
    // Readback slots for every step that can be in flight, made now: memory stays flat while tokens stream.
    engine.reserveReadbacks(Math.max(PREFILL_READBACKS, window.mostInFlight) + 1);

    const timing: Timing = { start: performance.now(), firstToken: 0 };
    const promptLayers = new PromptLayers(engine);
    window.begin(
      await prefill(engine, slot, ids, reused, promptLayers, dmtd?.prompt(reused)),
      dmtd?.full ?? null,
    );
    this.session.promptDone(ids);

    // One await per token, the readback; what the loop calls is synchronous (no promise of its own per token).
    const tokens = new TokenAcceptor(this.tokenizer, engine.config.routingLayers, this.opts, budget);
    while (tokens.stopReason === null) {
      window.fill(this.opts.signal);
      const readback = await engine.await(window.next());
      if (readback.routesOfRows) promptLayers.count(readback.routesOfRows); // the prompt's last chunk
      if (tokens.generated === 0) timing.firstToken = performance.now();
      else window.pace(tokens.generated, timing.firstToken);
      const sampled = planned(readback.results[0], window.lastPlan);
      this.session.tokens.push(sampled.id);
      const event = tokens.accept(sampled);
      if (event) yield event;
    }

    // Steps computed past the stop are waited for and dropped; the KV length forgets what they wrote.
    await window.drain();
    this.session.rollBack(dmtd?.thinkingValid);
    const summary = this.summarize(ids, reused, promptLayers, tokens, window.maxDepth, timing);
    if (dmtd) summary.dmtd = { cycle: dmtd.cycle, refillRows: window.refillRows };
    this.resolveSummary(summary);
  }

  /** A DMTD model's plan for this generation (null for other models). */
  private dmtdPlan(promptLength: number): DmtdRun | null {
    const cfg = this.session.engine.config.dmtd;
    if (!cfg) return null;
    const fullDepth = this.opts.fullDepth ?? false;
    const planner = new DmtdPlanner(cfg, { ...this.opts.dmtd, fullDepth });
    return new DmtdRun(planner, promptLength, this.session.thinkValid, fullDepth);
  }

  /** The prompt's token ids (kept in promptIds), checked against the context and the vocabulary. */
  private encodePrompt(): number[] {
    const input = this.input;
    const tok = this.tokenizer;
    const ids = typeof input === "string"
      ? tok.encodePrompt(input)
      : Array.isArray(input)
      ? tok.encodeChat(input)
      : input.ids.slice();
    this.promptIds = ids;
    const { context, config } = this.session.engine;
    if (ids.length === 0) throw new InputError("the prompt is empty", "give some text");
    if (ids.length >= context) {
      throw new InputError(
        `the prompt has ${ids.length} tokens but the context holds ${context}`,
        "shorten the prompt or raise --context",
      );
    }
    const bad = ids.find((id) => id < 0 || id >= config.vocabSize);
    if (bad !== undefined) {
      throw new InputError(`token id ${bad} is outside the model's vocabulary (${config.vocabSize})`);
    }
    return ids;
  }

  /** Sampling and routing for this generation, written once; the readback wait count starts over. */
  private configureEngine(): void {
    const { engine } = this.session;
    const opts = this.opts;
    const sampling: SamplingOptions = {
      temperature: opts.temperature ?? 0,
      topK: opts.topK ?? 0,
      topP: opts.topP ?? 1,
      seed: opts.seed ?? 0,
    };
    engine.setSampling([sampling]);
    engine.forward.routing = { threshold: opts.threshold ?? 0.5, fullDepth: opts.fullDepth ?? false };
    engine.readbackWaitMs = 0;
  }

  /** What the generation did: its prompt, tokens, stop reason and text, with the timings. */
  private summarize(
    ids: number[],
    reused: number,
    promptLayers: PromptLayers,
    tokens: TokenAcceptor,
    windowDepth: number,
    timing: Timing,
  ): GenerationSummary {
    const generated = tokens.generated;
    const prefillMs = timing.firstToken - timing.start;
    const decodeMs = performance.now() - timing.firstToken;
    return {
      promptIds: ids,
      promptLayers: promptLayers.perPosition(ids.length - reused),
      promptTokens: ids.length,
      reusedTokens: reused,
      generatedTokens: generated,
      stopReason: tokens.stopReason!,
      text: tokens.text,
      prefillMs,
      decodeMs,
      prefillTokensPerSec: (ids.length - reused) / (prefillMs / 1000),
      decodeTokensPerSec: generated > 1 ? (generated - 1) / (decodeMs / 1000) : 0,
      meanLayers: generated ? tokens.layerSum / generated : 0,
      windowDepth,
      readbackWaitMs: this.session.engine.readbackWaitMs,
    };
  }
}

/** A step's sampled token with the layers and head flag its DMTD plan gives it (as it is for other models). */
function planned(result: StepResult, plan: PlannedStep | null): SampledToken {
  return plan ? { ...result, layers: plan.layers, head: plan.head } : result;
}
