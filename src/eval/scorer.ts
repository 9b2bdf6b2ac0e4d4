/**
 * What `flexidepth eval` asks of a model, whatever runs it: the log-likelihood of continuations after a context
 * (multiple choice), and greedy generation (answers to extract). A mode is the same weights run differently.
 * The GPU scorer (gpu_scorer.ts) implements it on the engine; tests use a scorer of known answers.
 */

import type { PromptInput } from "../generation/generate.ts";

/** How the weights run: every layer, routed (FlexiDepth, at a threshold), or DMTD at a cycle. */
export interface EvalMode {
  /** As written on the command line and in results: "full", "routed", "threshold:0.6", "cycle:3". */
  name: string;
  fullDepth: boolean;
  /** FlexiDepth gate threshold (routed modes). */
  threshold?: number;
  /** DMTD cycle τ (cycle modes). */
  cycle?: number;
}

/** One continuation to score: the tokens of `continuation` after those of `context`, teacher-forced. */
export interface LoglikelihoodRequest {
  context: number[];
  continuation: number[];
}

export interface LoglikelihoodResult {
  /** Σ log P(continuation token | everything before it), natural log. */
  logprob: number;
  /** Every continuation token was the greedy choice (lm-eval's `is_greedy`). */
  greedy: boolean;
  /** Layers the pass that scored each continuation token ran. */
  layers: number[];
}

export interface GenerateRequest {
  prompt: PromptInput;
  maxTokens: number;
  /** Stop strings (the answer ends at the first). */
  stop: string[];
}

export interface GenerateResult {
  text: string;
  /** Layers of each generated token. */
  layers: number[];
}

export interface Scorer {
  /**
   * Log-likelihoods of `requests`, in order. Requests with the same context (a question's choices) are scored
   * together, their context's K/V computed once.
   */
  loglikelihood(requests: LoglikelihoodRequest[], mode: EvalMode): Promise<LoglikelihoodResult[]>;
  /** Greedy generation until a stop string or `maxTokens`. */
  generate(request: GenerateRequest, mode: EvalMode): Promise<GenerateResult>;
  /** Token ids of `text` as the model's tokenizer encodes it (no BOS: contexts add it themselves). */
  encode(text: string): number[];
  /** The model's BOS id, null without one. */
  readonly bos: number | null;
}
