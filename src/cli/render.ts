/**
 * Renderers: how streamed tokens reach the terminal or a pipe.
 * ansi  — each token's text on a light-to-dark blue background by layers used (as in the paper's figures),
 *         a legend first and a closing line of totals;
 * plain — the text only;
 * jsonl — a header object, one object per token, a summary object.
 */

import type { GenerationSummary, TokenEvent } from "../generation/generate.ts";
import { choiceFlag } from "./args.ts";

export type Format = "ansi" | "plain" | "jsonl";

/** --format: ansi on a terminal, plain in a pipe, unless given. */
export function formatFromFlag(value: string | undefined): Format {
  return choiceFlag<Format>(
    value,
    "--format",
    ["ansi", "plain", "jsonl"],
    Deno.stdout.isTerminal() ? "ansi" : "plain",
  );
}

export interface RenderContext {
  model: string;
  numLayers: number;
  /** Smallest possible layer count (non-routed layers). */
  minLayers: number;
  promptIds?: number[];
  /** A raw (untemplated) prompt; the ansi renderer shows it dimmed before its continuation. */
  rawPrompt?: string;
}

const enc = new TextEncoder();

/** Light (few layers) to dark (all layers) blue, as 24-bit ANSI background colours. */
export function layerColor(layers: number, min: number, max: number): string {
  const t = max > min ? Math.min(1, Math.max(0, (layers - min) / (max - min))) : 1;
  const light = [222, 235, 247], dark = [8, 48, 107];
  const [r, g, b] = light.map((l, i) => Math.round(l + (dark[i] - l) * t));
  const fg = t > 0.5 ? "255;255;255" : "0;0;0";
  return `\x1b[48;2;${r};${g};${b}m\x1b[38;2;${fg}m`;
}

/** A token as the JSON the jsonl formats and batch results write (`i` where given; `head` for DMTD models). */
export function tokenJson(t: Omit<TokenEvent, "i"> & { i?: number }): Record<string, unknown> {
  return {
    ...(t.i === undefined ? {} : { i: t.i }),
    id: t.id,
    text: t.text,
    layers: t.layers,
    routes: t.routes.map(Number),
    ...(t.head === undefined ? {} : { head: t.head }),
  };
}

/** A generation's summary as the JSON object the jsonl formats print (run, chat). */
export function summaryJson(s: GenerationSummary): Record<string, unknown> {
  return {
    prompt_tokens: s.promptTokens,
    reused_tokens: s.reusedTokens,
    generated_tokens: s.generatedTokens,
    stop_reason: s.stopReason,
    mean_layers: s.meanLayers,
    prefill_ms: s.prefillMs,
    decode_ms: s.decodeMs,
    decode_tokens_per_s: s.decodeTokensPerSec,
    window_depth: s.windowDepth,
    readback_wait_ms: s.readbackWaitMs,
    ...(s.dmtd ? { cycle: s.dmtd.cycle, refill_rows: s.dmtd.refillRows } : {}),
  };
}

export interface Renderer {
  start(ctx: RenderContext): void;
  token(t: TokenEvent): void;
  end(s: GenerationSummary): void;
}

export function makeRenderer(
  format: Format,
  out: { writeSync(p: Uint8Array): number } = Deno.stdout,
): Renderer {
  const write = (s: string) => {
    const bytes = enc.encode(s);
    let off = 0;
    while (off < bytes.length) off += out.writeSync(bytes.subarray(off));
  };
  let ctx: RenderContext;
  switch (format) {
    case "plain":
      return {
        start: (c) => ctx = c,
        token: (t) => write(t.text),
        end: () => write("\n"),
      };
    case "jsonl":
      return {
        start: (c) => {
          ctx = c;
          write(
            JSON.stringify({
              type: "header",
              model: c.model,
              num_layers: c.numLayers,
              prompt_ids: c.promptIds,
            }) + "\n",
          );
        },
        token: (t) => write(JSON.stringify(tokenJson(t)) + "\n"),
        end: (s) => write(JSON.stringify({ type: "summary", ...summaryJson(s) }) + "\n"),
      };
    case "ansi":
      return {
        start: (c) => {
          ctx = c;
          const steps = [];
          for (let l = c.minLayers; l <= c.numLayers; l++) {
            steps.push(`${layerColor(l, c.minLayers, c.numLayers)} ${l} \x1b[0m`);
          }
          write(`\x1b[2mlayers used:\x1b[0m ${steps.join("")}\n\n`);
          if (c.rawPrompt) write(`\x1b[2m${c.rawPrompt}\x1b[0m`);
        },
        token: (t) => {
          if (t.text) write(`${layerColor(t.layers, ctx.minLayers, ctx.numLayers)}${t.text}\x1b[0m`);
        },
        end: (s) =>
          write(
            `\n\n\x1b[2m${s.generatedTokens} tokens · ${s.decodeTokensPerSec.toFixed(1)} tokens/s · ` +
              `mean ${s.meanLayers.toFixed(2)} of ${ctx.numLayers} layers · stop: ${s.stopReason}\x1b[0m\n`,
          ),
      };
  }
}
