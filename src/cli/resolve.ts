/** Which checkpoint a command uses: --model DIR, else $FLEXIDEPTH_MODEL, else the demo model. */

import { ensureDefaultDemoModel } from "../model/demo.ts";

export interface ResolvedModel {
  dir: string;
  /** True when no model was given and the random-weight demo model is used. */
  demo: boolean;
}

export async function resolveModel(flag: string | undefined): Promise<ResolvedModel> {
  const given = flag ?? Deno.env.get("FLEXIDEPTH_MODEL");
  if (given) return { dir: given, demo: false };
  return { dir: await ensureDefaultDemoModel(), demo: true };
}

export const DEMO_NOTICE =
  "note: no --model given; using the built-in demo model (random weights, not a trained model: its text is noise).";
