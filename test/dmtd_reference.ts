/**
 * DMTD's oracle (../shared/design/dmtd-spec.md §5.1): the whole masked forward recomputed from scratch for
 * every token, with no cache carried between tokens — slow and unambiguous. The thinking layers run causally
 * over every position on the real tokens; each position's decoding-layer input follows its role: a prompt row
 * e + t (the released code) or t (plain), a cycle head e + t, any other generated row e alone.
 */

import type { ReferenceModel } from "./reference.ts";
import { argmax } from "./reference.ts";

/** How a position entered the sequence. */
export type Role = "prompt" | "head" | "other";

export interface OracleOptions {
  /** The prompt rows' decoding input: e + t ("reference", default) or t ("plain"). */
  prefill?: "reference" | "plain";
}

/** Logits after the last of `tokens`, each position with its role. */
export function oracleLogits(
  ref: ReferenceModel,
  tokens: number[],
  roles: Role[],
  opts: OracleOptions = {},
): Float32Array {
  const T = ref.cfg.dmtd!.thinkingLayers, L = ref.cfg.numLayers;
  const thinkCache = ref.newCache(), decodeCache = ref.newCache();
  let last = new Float32Array();
  tokens.forEach((token, p) => {
    const e = ref.embed(token);
    const t = e.slice();
    for (let l = 0; l < T; l++) ref.layer(l, t, p, thinkCache);
    const add = roles[p] === "head" ||
      (roles[p] === "prompt" && (opts.prefill ?? "reference") === "reference");
    const d = roles[p] === "other" ? e.slice() : t.map((v, i) => add ? v + e[i] : v);
    for (let l = T; l < L; l++) ref.layer(l, d, p, decodeCache);
    last = d;
  });
  return ref.logits(last);
}

/**
 * Greedy DMTD generation by the oracle: `steps` tokens after `prompt` (its rows' roles given, "prompt" by
 * default), cycles of τ anchored at the first generated token. Returns the tokens and each one's layers.
 */
export function oracleGreedy(
  ref: ReferenceModel,
  prompt: number[],
  steps: number,
  cycle: number,
  opts: OracleOptions & { promptRoles?: Role[] } = {},
): { ids: number[]; layers: number[]; roles: Role[] } {
  const tokens = prompt.slice();
  const roles: Role[] = opts.promptRoles?.slice() ?? prompt.map(() => "prompt");
  const cfg = ref.cfg.dmtd!;
  const ids: number[] = [], layers: number[] = [];
  let full = true; // the first token comes from the prompt's pass through every layer
  for (let j = 0; j < steps; j++) {
    const id = argmax(oracleLogits(ref, tokens, roles, opts));
    ids.push(id);
    layers.push(full ? cfg.thinkingLayers + cfg.decodingLayers : cfg.decodingLayers);
    const head = j % cycle === 0;
    tokens.push(id);
    roles.push(head ? "head" : "other");
    full = head;
  }
  return { ids, layers, roles };
}
