/** The model a generating command runs: resolved from --model, noted when it is the demo model, loaded. */

import { type LoadOptions, Model } from "../generation/model.ts";
import { DEMO_NOTICE, resolveModel } from "./resolve.ts";

export interface OpenedModel {
  model: Model;
  /** the checkpoint folder (a Hugging Face cache snapshot for `--model ORG/NAME`) */
  dir: string;
}

/**
 * Resolves --model (see ./resolve.ts), notes the demo model on stderr, runs `check` on the folder (so a
 * command fails before any weight is uploaded) and loads the model; its chat template renders with
 * `chatVariables` (--thinking).
 */
export async function openModel(
  flag: string | undefined,
  options: LoadOptions,
  check?: (dir: string) => Promise<void>,
  chatVariables: Record<string, unknown> = {},
): Promise<OpenedModel> {
  const resolved = await resolveModel(flag);
  if (resolved.demo) console.error(DEMO_NOTICE);
  if (check) await check(resolved.dir);
  const model = await Model.load(resolved.dir, options);
  model.tokenizer.chatVariables = chatVariables;
  return { model, dir: resolved.dir };
}
