/**
 * Checkpoint folders that do not open: every broken folder (config, weights, tokenizer, shard index,
 * routers, shapes) and Qwen's q/k norms and biases give a CheckpointError that carries the fix.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  readSafetensorsHeader,
  readTensorBytes,
  type TensorToWrite,
  writeSafetensors,
} from "../src/model/safetensors.ts";
import { openCheckpoint } from "../src/model/checkpoint.ts";
import { type DemoOptions, writeDemoCheckpoint } from "../src/model/demo.ts";
import { editJson, rejectsWith, SMALL, withTempDir } from "./loader_fixtures.ts";

/** Writes a small demo into `dir`, lets `edit` break it, then expects openCheckpoint to fail. */
async function brokenDemo(
  edit: (dir: string) => Promise<void>,
  opts: DemoOptions = SMALL,
): Promise<{ dir: string; open: Promise<unknown>; cleanup: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "flexidepth-broken-" });
  await writeDemoCheckpoint(dir, opts);
  await edit(dir);
  return { dir, open: openCheckpoint(dir), cleanup: () => Deno.remove(dir, { recursive: true }) };
}

/** A way to break a demo folder, what openCheckpoint must then say, and the demo's options (SMALL if none). */
type BrokenCase = [string, (dir: string) => Promise<void>, RegExp[], DemoOptions?];

/** Breaks a fresh demo as each case says and expects openCheckpoint to fail with the case's patterns. */
async function expectBroken(cases: BrokenCase[]): Promise<void> {
  for (const [label, edit, patterns, opts] of cases) {
    const { open, cleanup } = await brokenDemo(edit, opts);
    try {
      await rejectsWith(open, ...patterns);
    } catch (err) {
      throw new Error(`case "${label}": ${(err as Error).message}`);
    } finally {
      await cleanup();
    }
  }
}

/** Folders broken one way each. */
const BROKEN_FOLDERS: BrokenCase[] = [
  ["missing config.json", (d) => Deno.remove(join(d, "config.json")), [/no config\.json/, /Hugging Face/]],
  ["config not JSON", (d) => Deno.writeTextFile(join(d, "config.json"), "{"), [
    /config\.json is not valid JSON/,
  ]],
  [
    "missing config key",
    (d) => editJson(join(d, "config.json"), (c) => delete c.hidden_size),
    [/missing key "hidden_size"/],
  ],
  [
    "unsupported architecture",
    (d) => editJson(join(d, "config.json"), (c) => (c.model_type = "gpt2")),
    [/unsupported architecture "gpt2"/],
  ],
  ["no weights", (d) => Deno.remove(join(d, "model.safetensors")), [/no model\.safetensors/]],
  [
    "only pytorch weights",
    async (d) => {
      await Deno.rename(join(d, "model.safetensors"), join(d, "pytorch_model.bin"));
    },
    [/only \.safetensors weights are supported/],
  ],
  ["no tokenizer.json", (d) => Deno.remove(join(d, "tokenizer.json")), [/no tokenizer\.json/]],
  [
    "generation_config not JSON",
    (d) => Deno.writeTextFile(join(d, "generation_config.json"), "nope"),
    [/generation_config\.json is not valid JSON/],
  ],
  [
    "index pointing at a missing shard",
    (d) => Deno.remove(join(d, "model-00002-of-00002.safetensors")),
    [/lists shard .*model-00002-of-00002\.safetensors, which is missing/, /download is incomplete/],
    { ...SMALL, shards: 2 },
  ],
  [
    "index mapping a tensor to the wrong shard",
    (d) =>
      editJson(join(d, "model.safetensors.index.json"), (j) => {
        (j.weight_map as Record<string, string>)["model.norm.weight"] = "model-00001-of-00002.safetensors";
      }),
    [/maps tensor "model\.norm\.weight" to .*00001.*, which does not hold it/],
    { ...SMALL, shards: 2 },
  ],
  [
    "index shard outside the folder",
    (d) =>
      editJson(join(d, "model.safetensors.index.json"), (j) => {
        (j.weight_map as Record<string, string>)["model.norm.weight"] = "../elsewhere.safetensors";
      }),
    [/outside the model folder/],
    { ...SMALL, shards: 2 },
  ],
  [
    "routed layer lacking its router",
    (d) => editJson(join(d, "config.json"), (c) => (c.routing_layers = [0, 1])),
    [
      /routed layer 0 lacks tensor model\.layers\.0\.router\.router_enc\.weight/,
      /not a complete FlexiDepth/,
    ],
    { ...SMALL, routingLayers: [1] },
  ],
  [
    "reduction factor disagreeing with the tensors",
    (d) => editJson(join(d, "config.json"), (c) => (c.router_reduction_factor = 8)),
    [/router_enc\.weight has 2 rows but router_reduction_factor 8 gives 4/, /fix router_reduction_factor/],
    { ...SMALL, routingLayers: [1] },
  ],
  [
    "shape disagreeing with config.json",
    (d) => editJson(join(d, "config.json"), (c) => (c.intermediate_size = 65)),
    [/model\.layers\.0\.mlp\.gate_proj\.weight has shape \[64, 32\], expected \[65, 32\]/],
  ],
  [
    "untied model without lm_head",
    (d) => editJson(join(d, "config.json"), (c) => (c.tie_word_embeddings = false)),
    [/tensor lm_head\.weight missing/],
    { ...SMALL, tieEmbeddings: true },
  ],
];

Deno.test("broken checkpoint folders give CheckpointErrors that carry the fix", async () => {
  await expectBroken(BROKEN_FOLDERS);
});

/** Rewrites a demo's model.safetensors with its tensors edited (dropped, reshaped, added). */
async function editTensors(dir: string, edit: (tensors: TensorToWrite[]) => TensorToWrite[]): Promise<void> {
  const file = join(dir, "model.safetensors");
  const infos = await readSafetensorsHeader(file);
  const tensors: TensorToWrite[] = [];
  for (const t of infos) {
    tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await readTensorBytes(t) });
  }
  await writeSafetensors(file, edit(tensors), { format: "pt" });
}

/** The Qwen demos: Qwen3 with q/k norms and tied embeddings, Qwen2 with q/k/v biases. */
const qwen3: DemoOptions = {
  ...SMALL,
  arch: "qwen3",
  heads: 4,
  kvHeads: 2,
  headDim: 12,
  tieEmbeddings: true,
};
const qwen2: DemoOptions = { ...SMALL, arch: "qwen2", heads: 4, kvHeads: 2 };
/** Adds an o_proj bias, which neither Qwen has. */
const oBias = (ts: TensorToWrite[]) => [
  ...ts,
  {
    name: "model.layers.1.self_attn.o_proj.bias",
    dtype: "BF16" as const,
    shape: [32],
    data: new Uint8Array(64),
  },
];

/** Qwen checkpoints with a tensor dropped, reshaped or added. */
const BROKEN_TENSORS: [string, (ts: TensorToWrite[]) => TensorToWrite[], RegExp[], DemoOptions][] = [
  ["no k_norm", (ts) => ts.filter((t) => t.name !== "model.layers.1.self_attn.k_norm.weight"), [
    /tensor model\.layers\.1\.self_attn\.k_norm\.weight missing/,
    /download it again/,
  ], qwen3],
  [
    "q_norm over the whole q",
    (ts) =>
      ts.map((t) =>
        t.name.endsWith("0.self_attn.q_norm.weight") ? { ...t, shape: [48], data: new Uint8Array(96) } : t
      ),
    [/q_norm\.weight has shape \[48\], expected \[12\]/],
    qwen3,
  ],
  ["no v bias", (ts) => ts.filter((t) => !t.name.endsWith("0.self_attn.v_proj.bias")), [
    /tensor model\.layers\.0\.self_attn\.v_proj\.bias missing/,
  ], qwen2],
  ["an o_proj bias on Qwen2", oBias, [
    /o_proj\.bias is a bias that qwen2 as configured does not have/,
    /only Qwen2/,
  ], qwen2],
  ["an o_proj bias on Qwen3", oBias, [/o_proj\.bias is a bias that qwen3/], qwen3],
  [
    "q/k/v biases on a Llama",
    (
      ts,
    ) => [...ts, {
      name: "model.layers.0.self_attn.q_proj.bias",
      dtype: "BF16",
      shape: [32],
      data: new Uint8Array(64),
    }],
    [/q_proj\.bias is a bias that llama as configured does not have/, /model_type qwen2/],
    SMALL,
  ],
];

Deno.test("Qwen checkpoints: q/k norms and q/k/v biases are checked; a bias the engine would not add is refused", async () => {
  await withTempDir(async (dir) => {
    await writeDemoCheckpoint(join(dir, "3"), qwen3);
    const ck = await openCheckpoint(join(dir, "3"));
    assert.deepEqual([ck.config.architecture, ck.config.headDim, ck.tensors.has("lm_head.weight")], [
      "qwen3",
      12,
      false,
    ]);
    assert.deepEqual(ck.tensors.get("model.layers.1.self_attn.k_norm.weight")!.shape, [12]);
    await writeDemoCheckpoint(join(dir, "2"), qwen2);
    const ck2 = await openCheckpoint(join(dir, "2"));
    assert.deepEqual(ck2.tensors.get("model.layers.0.self_attn.k_proj.bias")!.shape, [16]);
    assert.ok(ck2.tensors.has("lm_head.weight"));
  });
  const cases = BROKEN_TENSORS.map(([label, edit, patterns, opts]): BrokenCase => {
    return [label, (d) => editTensors(d, edit), patterns, opts];
  });
  await expectBroken(cases);
});
