/**
 * --modes: how the same weights run. `full` every layer; `routed` FlexiDepth's routers at the released gate
 * threshold 0.5; `threshold:G` at G; `cycle:N` DMTD at τ = N. Routed modes need a model with routers
 * (`routing_layers`), cycle modes a DMTD model.
 */

import { UsageError } from "../errors.ts";
import type { EvalMode } from "./scorer.ts";

export interface ModelCaps {
  /** The model has FlexiDepth routers. */
  routed: boolean;
  /** The DMTD model's own cycle τ, null for other models. */
  dmtdCycle: number | null;
}

export const RELEASED_THRESHOLD = 0.5;

/** full and the model's own adaptive mode: routed (FlexiDepth), cycle:τ (DMTD), or full alone. */
export function defaultModes(caps: ModelCaps): string {
  return caps.routed ? "full,routed" : caps.dmtdCycle !== null ? `full,cycle:${caps.dmtdCycle}` : "full";
}

function parseOne(word: string, caps: ModelCaps): EvalMode {
  const routerFix = "routed and threshold modes need a FlexiDepth model (routing_layers in its config.json)";
  if (word === "full") return { name: "full", fullDepth: true };
  if (word === "routed" || word.startsWith("threshold:")) {
    const g = word === "routed" ? RELEASED_THRESHOLD : Number(word.slice("threshold:".length));
    if (word !== "routed" && (word.slice(10).trim() === "" || !Number.isFinite(g) || g < 0 || g > 1)) {
      throw new UsageError(`--modes: "${word}" needs a threshold in [0, 1]`, "e.g. threshold:0.6");
    }
    if (!caps.routed) throw new UsageError(`--modes: "${word}" on a model without routers`, routerFix);
    return { name: word === "routed" ? "routed" : `threshold:${g}`, fullDepth: false, threshold: g };
  }
  if (word.startsWith("cycle:")) {
    const n = Number(word.slice("cycle:".length));
    if (!Number.isInteger(n) || n < 1 || n > 64) {
      throw new UsageError(`--modes: "${word}" needs a whole cycle length from 1 to 64`, "e.g. cycle:4");
    }
    if (caps.dmtdCycle === null) {
      throw new UsageError(
        `--modes: "${word}" on a model that is not DMTD`,
        "cycle modes need a DMTD model (num_thinking_layers, num_decoding_layers and mtp_horizon in its config.json)",
      );
    }
    return { name: `cycle:${n}`, fullDepth: false, cycle: n };
  }
  throw new UsageError(
    `--modes: unknown mode "${word}"`,
    "use full, routed, threshold:G or cycle:N, separated by commas",
  );
}

export function parseModes(text: string, caps: ModelCaps): EvalMode[] {
  const words = text.split(",").map((w) => w.trim()).filter((w) => w !== "");
  if (words.length === 0) throw new UsageError("--modes is empty", "e.g. --modes full,routed");
  const modes = words.map((w) => parseOne(w, caps));
  const names = modes.map((m) => m.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new UsageError(`--modes names ${twice} twice`, "give each mode once");
  return modes;
}
