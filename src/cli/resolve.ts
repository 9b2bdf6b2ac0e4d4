/**
 * Which checkpoint a command uses: --model, else $FLEXIDEPTH_MODEL, else the bundled model
 * (models/flexidepth-tiny, trained here: see models/README.md), else the random-weight demo model. The model is
 * a local checkpoint folder, or a Hugging Face repo id `ORG/NAME[@REVISION]` looked up in the standard
 * Hugging Face cache (so models fetched by `flexidepth pull`, huggingface-cli or transformers are reused).
 * A path that exists wins over a repo id of the same spelling.
 */

import { join } from "node:path";
import { ensureDefaultDemoModel } from "../model/demo.ts";
import { parseRepoRef, requireCachedSnapshot } from "../hub/cache.ts";

/** The bundled FlexiDepth model: the default when it is there (a compiled binary includes it). */
export const BUNDLED_MODEL: string = new URL("../../models/flexidepth-tiny", import.meta.url).pathname;

export interface ResolvedModel {
  dir: string;
  /** True when no model was given and the random-weight demo model is used. */
  demo: boolean;
}

async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

export async function resolveModel(
  flag: string | undefined,
  bundled = BUNDLED_MODEL,
): Promise<ResolvedModel> {
  const given = flag ?? Deno.env.get("FLEXIDEPTH_MODEL");
  if (!given && await pathExists(join(bundled, "config.json"))) return { dir: bundled, demo: false };
  if (!given) return { dir: await ensureDefaultDemoModel(), demo: true };
  if (await pathExists(given)) return { dir: given, demo: false };
  const ref = parseRepoRef(given);
  // Not a repo id: a folder that does not exist, which opening the checkpoint reports with its fix.
  if (!ref) return { dir: given, demo: false };
  return { dir: await requireCachedSnapshot(ref), demo: false };
}

export const DEMO_NOTICE =
  "note: no --model given; using the built-in demo model (random weights, not a trained model: its text is noise).";
