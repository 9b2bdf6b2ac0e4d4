/**
 * A Scorer of known answers for the eval tests: words are tokens (a token is a word with the spaces before
 * it), a continuation's log-likelihood comes from a table keyed by mode and text (the hidden rule), and
 * generation answers from a table keyed by the prompt's last line. Every call is logged.
 */

import type {
  EvalMode,
  GenerateRequest,
  GenerateResult,
  LoglikelihoodRequest,
  LoglikelihoodResult,
  Scorer,
} from "../src/eval/scorer.ts";

export interface FakeRules {
  /** mode name → continuation text → log-likelihood (default: −1 per character). */
  loglikelihood?: Record<string, Record<string, number>>;
  /** mode name → the prompt's last line → generated text (default ""). */
  generate?: Record<string, Record<string, string>>;
  /** layers per scored token in each mode (default 8). */
  layers?: Record<string, number>;
}

export class FakeScorer implements Scorer {
  readonly bos: number | null = 1;
  readonly calls: { kind: "loglikelihood" | "generate"; mode: string; requests: unknown }[] = [];
  private readonly vocab = new Map<string, number>();
  private readonly words: string[] = ["<pad>", "<s>"];
  /** Called after each scorer call (e.g. to interrupt the run there). */
  onCall: (n: number) => void = () => {};

  constructor(readonly rules: FakeRules = {}) {}

  encode(text: string): number[] {
    return (text.match(/\s*\S+|\s+/g) ?? []).map((w) => {
      let id = this.vocab.get(w);
      if (id === undefined) {
        id = this.words.length;
        this.vocab.set(w, id);
        this.words.push(w);
      }
      return id;
    });
  }

  decode(ids: number[]): string {
    return ids.map((i) => this.words[i]).join("");
  }

  private layers(mode: EvalMode): number {
    return this.rules.layers?.[mode.name] ?? 8;
  }

  loglikelihood(requests: LoglikelihoodRequest[], mode: EvalMode): Promise<LoglikelihoodResult[]> {
    this.calls.push({ kind: "loglikelihood", mode: mode.name, requests });
    const out = requests.map((r) => {
      const text = this.decode(r.continuation);
      const ll = this.rules.loglikelihood?.[mode.name]?.[text] ?? -text.length;
      return { logprob: ll, greedy: false, layers: r.continuation.map(() => this.layers(mode)) };
    });
    this.onCall(this.calls.length);
    return Promise.resolve(out);
  }

  generate(request: GenerateRequest, mode: EvalMode): Promise<GenerateResult> {
    this.calls.push({ kind: "generate", mode: mode.name, requests: request });
    const p = request.prompt;
    const prompt = typeof p === "string" ? p : Array.isArray(p) ? p[p.length - 1].content : "";
    const lines = prompt.trim().split("\n");
    const last = lines.length > 1 ? lines[lines.length - 2] : lines[0];
    const text = this.rules.generate?.[mode.name]?.[last] ?? "";
    this.onCall(this.calls.length);
    return Promise.resolve({ text, layers: this.encode(text).map(() => this.layers(mode)) });
  }
}
