/**
 * The Scorer on the GPU engine (placeholder: its real implementation is being written elsewhere and replaces
 * this whole file). `flexidepth eval` depends only on this function's signature and the Scorer interface.
 */

import type { Model } from "../generation/model.ts";
import type { Scorer } from "./scorer.ts";

export function createGpuScorer(model: Model): Scorer {
  return {
    loglikelihood() {
      throw new Error("not implemented");
    },
    generate() {
      throw new Error("not implemented");
    },
    encode() {
      throw new Error("not implemented");
    },
    get bos(): number | null {
      return model.tokenizer.bosId;
    },
  };
}
