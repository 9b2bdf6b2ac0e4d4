/**
 * Seeded random mutations of a checkpoint's JSON files for the checkpoint fuzzer (test/fuzz.test.ts):
 * config.json (deleted keys, values of the wrong type or size, byte noise, truncation) and the shard index
 * (a missing shard, bad weight_map types and file names).
 */

import { byteNoise, int, mutateValue, pick, type Rng, toJson, weird } from "./fuzz_values.ts";

/** Keys a config may have besides those of the demo's, some only for other architectures. */
const EXTRA_CONFIG_KEYS = [
  "head_dim",
  "routing_layers",
  "rope_scaling",
  "router_reduction_factor",
  "proj_reduction_factor",
  "hidden_act",
  "attention_bias",
  "rope_parameters",
  "use_sliding_window",
  "num_thinking_layers",
  "mtp_horizon",
];

/** A mutated JSON file and what was done to it (for the failure message). */
export interface TextMutation {
  text: string;
  what: string[];
}

/** `text` with byte noise anywhere (decoded again, so broken UTF-8 turns into U+FFFD). */
function textNoise(rng: Rng, text: string): string {
  return new TextDecoder().decode(byteNoise(rng, new TextEncoder().encode(text), 0, text.length));
}

/** 1–3 edits of config.json's keys (`keys`: those of the valid file). */
function editConfig(rng: Rng, configText: string, keys: string[]): TextMutation {
  const cfg = JSON.parse(configText) as Record<string, unknown>;
  const what: string[] = [];
  for (let e = 1 + int(rng, 3); e > 0; e--) {
    const key = rng() < 0.8 ? pick(rng, keys) : pick(rng, EXTRA_CONFIG_KEYS);
    if (rng() < 0.25) {
      delete cfg[key];
      what.push(`delete ${key}`);
    } else if (key === "rope_scaling" && rng() < 0.5) {
      cfg[key] = {
        rope_type: pick(rng, ["llama3", "linear", "yarn", weird(rng)]),
        factor: weird(rng),
        original_max_position_embeddings: weird(rng),
      };
      what.push("rope_scaling object");
    } else {
      cfg[key] = mutateValue(rng, cfg[key]);
      what.push(`${key} weird`);
    }
  }
  return { text: toJson(cfg), what };
}

/** One random mutation of a valid config.json. */
export function mutateConfig(rng: Rng, configText: string, keys: string[]): TextMutation {
  const kind = int(rng, 10);
  if (kind === 0) return { text: textNoise(rng, configText), what: ["byte noise"] };
  if (kind === 1) return { text: configText.slice(0, int(rng, configText.length)), what: ["truncated"] };
  return editConfig(rng, configText, keys);
}

/** 1–3 edits of the weight map: a tensor dropped, given a weird value or another (often bad) file name. */
function editWeightMap(
  rng: Rng,
  index: { weight_map: unknown },
  names: string[],
  shardNames: string[],
): TextMutation {
  const map = index.weight_map as Record<string, unknown>;
  const what: string[] = [];
  for (let e = 1 + int(rng, 3); e > 0; e--) {
    const name = rng() < 0.9 ? pick(rng, names) : pick(rng, ["__proto__", "unknown.weight", ""]);
    const op = int(rng, 3);
    if (op === 0) {
      delete map[name];
      what.push(`drop ${name}`);
    } else if (op === 1) {
      map[name] = weird(rng);
      what.push(`${name} weird`);
    } else {
      map[name] = pick(rng, [
        ...shardNames,
        "missing.safetensors",
        "../outside.safetensors",
        "/etc/passwd",
        "",
        ".",
        "config.json",
        "config.json/x",
        "sub/dir/x.safetensors",
        "a\u0000b",
        "n".repeat(5000),
        "./" + shardNames[0],
      ]);
      what.push(`${name} → ${JSON.stringify(map[name]).slice(0, 30)}`);
    }
  }
  return { text: toJson(index), what };
}

/**
 * One random mutation of a valid shard index (`names`: its tensors); `removed`, when set, is the shard
 * whose file the case must delete (and put back after).
 */
export function mutateIndex(
  rng: Rng,
  indexText: string,
  names: string[],
  shardNames: string[],
): TextMutation & { removed: number | null } {
  const index = JSON.parse(indexText) as { weight_map: unknown };
  const kind = int(rng, 8);
  if (kind === 0) return { text: textNoise(rng, indexText), what: ["byte noise"], removed: null };
  if (kind === 1) {
    index.weight_map = weird(rng);
    return { text: toJson(index), what: ["weight_map weird"], removed: null };
  }
  if (kind === 2) {
    const removed = int(rng, shardNames.length);
    return { text: indexText, what: [`shard ${removed} missing`], removed };
  }
  return { ...editWeightMap(rng, index, names, shardNames), removed: null };
}
