/**
 * What a stage trains, decided from the flags and the base: FlexiDepth's routed layers, DMTD's layer split and
 * cycle, a pretrain's shape (a preset or a config.json, with the tokenizer's vocabulary) — and the config.json
 * the trained checkpoint is written with, so that `run` loads it as it is.
 */

import { type ModelConfig, parseConfig } from "../model/config.ts";
import { REDUCTION_FACTOR } from "../model/demo_config.ts";
import type { TextTokenizer } from "../tokenizer/tokenizer.ts";
import { TrainError } from "./errors.ts";
import {
  defaultRoutedLayers,
  pretrainConfigJson,
  SHAPE_PRESETS,
  type TrainShape,
  trainShape,
} from "./model/shape.ts";
import type { TrainOptions } from "./setup.ts";

/** DMTD's default cycle, and its decoding layers: the release decodes with the last 8 of 36. */
export const DEFAULT_CYCLE = 4;
export const defaultDecodingLayers = (layers: number) => Math.max(1, Math.round(layers * 8 / 36));

/** The shape a flexidepth or dmtd stage trains on `cfg`. */
export function baseShape(
  o: Pick<TrainOptions, "stage" | "layers" | "cycle" | "decodingLayers">,
  cfg: ModelConfig,
): TrainShape {
  if (o.stage === "flexidepth") {
    const routed = o.layers ??
      (cfg.routingLayers.length ? cfg.routingLayers : defaultRoutedLayers(cfg.numLayers));
    return trainShape(cfg, { routed });
  }
  const decoding = o.decodingLayers ?? cfg.dmtd?.decodingLayers ?? defaultDecodingLayers(cfg.numLayers);
  if (decoding < 1 || decoding >= cfg.numLayers) {
    throw new TrainError(
      `${decoding} decoding layers do not fit a ${cfg.numLayers}-layer model`,
      `pass --decoding-layers from 1 to ${cfg.numLayers - 1}`,
    );
  }
  const cycle = o.cycle ?? cfg.dmtd?.cycle ?? DEFAULT_CYCLE;
  return trainShape(cfg, { dmtd: { thinking: cfg.numLayers - decoding, cycle } });
}

/** A pretrain's shape: a preset's name or a config.json's path, its vocabulary the tokenizer's. */
export async function pretrainShape(
  name: string,
  tokenizer: TextTokenizer,
  seq: number,
): Promise<TrainShape> {
  let shape = SHAPE_PRESETS[name];
  if (!shape) {
    if (!name.endsWith(".json")) {
      throw new TrainError(
        `no shape preset "${name}"`,
        `pass --shape ${Object.keys(SHAPE_PRESETS).join(", ")}, or a config.json`,
      );
    }
    try {
      shape = JSON.parse(await Deno.readTextFile(name));
    } catch (err) {
      throw new TrainError(`cannot read the shape ${name}: ${(err as Error).message}`, "pass a config.json");
    }
  }
  const json = pretrainConfigJson(shape, {
    vocabSize: tokenizer.vocabSize,
    bosTokenId: tokenizer.bosId,
    eosTokenIds: tokenizer.eosIds,
  }, seq);
  return trainShape(parseConfig(json, name));
}

/** The trained checkpoint's config.json: the base's with the stage's keys, or the pretrain's. */
export async function exportConfig(s: TrainShape, baseDir: string | null): Promise<Record<string, unknown>> {
  const json = baseDir
    ? JSON.parse(await Deno.readTextFile(`${baseDir}/config.json`)) as Record<string, unknown>
    : pretrainJson(s.cfg);
  if (s.routed.length) {
    if (json.model_type === "llama") {
      Object.assign(json, { model_type: "ddllama", architectures: ["DDLlamaForCausalLM"] });
    }
    Object.assign(json, {
      routing_layers: s.routed,
      router_reduction_factor: REDUCTION_FACTOR,
      proj_reduction_factor: REDUCTION_FACTOR,
    });
  }
  if (s.dmtd) {
    if (json.model_type === "qwen3") {
      Object.assign(json, { model_type: "dmtdqwen3", architectures: ["DMTDQwen3ForCausalLM"] });
    }
    Object.assign(json, {
      num_encoding_layers: 0,
      num_thinking_layers: s.dmtd.thinking,
      num_decoding_layers: s.layers - s.dmtd.thinking,
      mtp_horizon: s.dmtd.cycle,
    });
  }
  return json;
}

/** A pretrained model's config.json from its parsed config. */
function pretrainJson(c: ModelConfig): Record<string, unknown> {
  const qwen = c.architecture === "qwen3";
  return {
    architectures: [qwen ? "Qwen3ForCausalLM" : "LlamaForCausalLM"],
    model_type: qwen ? "qwen3" : "llama",
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.maxPositions,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    tie_word_embeddings: c.tieWordEmbeddings,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds,
    hidden_act: "silu",
    attention_bias: false,
    mlp_bias: false,
    torch_dtype: "float32",
  };
}
