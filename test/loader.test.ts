/** safetensors parsing and checkpoint opening: round trips, every corruption case, real checkpoints. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CheckpointError } from "../src/errors.ts";
import { decodeToF32, type DType, encodeFromF32, roundTo } from "../src/model/dtype.ts";
import {
  MAX_HEADER_BYTES,
  readSafetensorsHeader,
  readTensorBytes,
  type TensorToWrite,
  writeSafetensors,
} from "../src/model/safetensors.ts";
import { openCheckpoint, routerDims, routerTensorNames } from "../src/model/checkpoint.ts";
import { type DemoOptions, writeDemoCheckpoint } from "../src/model/demo.ts";

const STORIES = new URL("../../shared/models/stories260K", import.meta.url).pathname;
const STORIES_FD = new URL("../../shared/models/stories260K-flexidepth", import.meta.url).pathname;
/** Small vocabulary so demo checkpoints are tiny and quick to write. */
const SMALL: DemoOptions = { vocabSize: 300, hidden: 32, headDim: 8, intermediate: 64, layers: 2 };

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flexidepth-loader-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Expects a CheckpointError whose message matches every pattern. */
async function rejectsWith(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof CheckpointError, `expected CheckpointError, got ${err}`);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

/** A safetensors file from raw parts: header (object or literal text), data, optional lying length. */
function rawFile(header: unknown, data = new Uint8Array(0), headerLength?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

Deno.test("safetensors round trip keeps names, shapes, dtypes and bytes, with an aligned data section", async () => {
  await withTempDir(async (dir) => {
    const values = [0, 1, -2.5, 3.14159, 1e-3, -65504, 0.1, 7];
    const tensors = (["F32", "F16", "BF16"] as DType[]).map((dtype, i) => ({
      name: `t.${dtype}`,
      dtype,
      shape: i === 0 ? [2, 4] : [8],
      data: encodeFromF32(dtype, values),
    }));
    tensors.push({ name: "scalar", dtype: "F32", shape: [], data: encodeFromF32("F32", [42]) });
    tensors.push({ name: "empty", dtype: "BF16", shape: [0, 5], data: new Uint8Array(0) });
    const path = join(dir, "m.safetensors");
    await writeSafetensors(path, tensors, { format: "pt" });

    const bytes = await Deno.readFile(path);
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal((8 + headerLength) % 8, 0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
    assert.deepEqual(header.__metadata__, { format: "pt" });

    const infos = await readSafetensorsHeader(path);
    assert.deepEqual(infos.map((t) => t.name).sort(), tensors.map((t) => t.name).sort());
    for (const t of tensors) {
      const info = infos.find((i) => i.name === t.name)!;
      assert.equal(info.dtype, t.dtype);
      assert.deepEqual(info.shape, t.shape);
      assert.equal(info.file, path);
      const read = await readTensorBytes(info);
      assert.deepEqual(read, new Uint8Array(t.data));
    }
    const bf16 = decodeToF32("BF16", await readTensorBytes(infos.find((i) => i.name === "t.BF16")!));
    assert.deepEqual([...bf16], values.map((v) => roundTo("BF16", v)));
  });
});

Deno.test("writeSafetensors refuses data of the wrong size and leaves no file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "bad.safetensors");
    await rejectsWith(
      writeSafetensors(path, [{ name: "w", dtype: "F32", shape: [3], data: new Uint8Array(8) }]),
      /"w"/,
      /8 bytes/,
    );
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  });
});

Deno.test("corrupt safetensors files give CheckpointErrors that name the file and the problem", async () => {
  await withTempDir(async (dir) => {
    const f32x4 = { dtype: "F32", shape: [4], data_offsets: [0, 16] };
    const cases: [string, Uint8Array, RegExp][] = [
      ["tiny", new Uint8Array(5), /too short/],
      [
        "length-past-eof",
        rawFile({ a: f32x4 }, new Uint8Array(16), 100000n),
        /runs past the end of the file/,
      ],
      ["length-huge", rawFile({}, new Uint8Array(0), 2n ** 62n), /exceeds the .*-byte limit/],
      ["not-json", rawFile("{not json", new Uint8Array(0)), /not valid JSON/],
      ["json-array", rawFile("[1, 2]"), /not a JSON object/],
      ["truncated-data", rawFile({ a: f32x4 }, new Uint8Array(10)), /past the end of the data section/],
      [
        "offsets-reversed",
        rawFile({ a: { ...f32x4, data_offsets: [16, 0] } }, new Uint8Array(16)),
        /start after end/,
      ],
      [
        "offsets-fractional",
        rawFile({ a: { ...f32x4, data_offsets: [0, 1.5] } }, new Uint8Array(16)),
        /data_offsets/,
      ],
      ["offsets-missing", rawFile({ a: { dtype: "F32", shape: [4] } }, new Uint8Array(16)), /data_offsets/],
      [
        "overlap",
        rawFile({ a: f32x4, b: { ...f32x4, data_offsets: [8, 24] } }, new Uint8Array(24)),
        /overlap/,
      ],
      [
        "dtype-i8",
        rawFile({ a: { ...f32x4, dtype: "I8", data_offsets: [0, 4] } }, new Uint8Array(4)),
        /unsupported dtype I8 for tensor "a"/,
      ],
      ["dtype-junk", rawFile({ a: { ...f32x4, dtype: "Q4" } }, new Uint8Array(16)), /unsupported dtype Q4/],
      ["shape-size", rawFile({ a: { ...f32x4, shape: [5] } }, new Uint8Array(16)), /shape\/size mismatch/],
      ["shape-negative", rawFile({ a: { ...f32x4, shape: [-4] } }, new Uint8Array(16)), /bad shape/],
      [
        "shape-overflow",
        rawFile({ a: { ...f32x4, shape: [2 ** 40, 2 ** 40] } }, new Uint8Array(16)),
        /mismatch/,
      ],
      ["entry-not-object", rawFile({ a: 7 }), /no header object/],
      ["metadata-not-object", rawFile({ __metadata__: "x" }), /__metadata__/],
    ];
    for (const [name, bytes, pattern] of cases) {
      const path = join(dir, `${name}.safetensors`);
      await Deno.writeFile(path, bytes);
      await rejectsWith(readSafetensorsHeader(path), pattern, new RegExp(name), /—/);
    }
    await rejectsWith(
      readSafetensorsHeader(join(dir, "absent.safetensors")),
      /absent\.safetensors: file not found/,
    );
    await rejectsWith(readSafetensorsHeader(dir), /not a regular file/);
    assert.ok(MAX_HEADER_BYTES >= 1 << 20);
  });
});

Deno.test("readTensorBytes fails cleanly when the file shrank after its header was read", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "m.safetensors");
    await writeSafetensors(path, [{ name: "w", dtype: "F32", shape: [64], data: new Uint8Array(256) }]);
    const [info] = await readSafetensorsHeader(path);
    await Deno.truncate(path, info.offset + 100);
    await rejectsWith(readTensorBytes(info), /"w" ends at byte/, /truncated or corrupt/);
    await rejectsWith(readTensorBytes({ ...info, byteLength: -1 }), /bad offset or length/);
  });
});

Deno.test("the demo checkpoint opens and every Llama tensor is there", async () => {
  await withTempDir(async (dir) => {
    await writeDemoCheckpoint(dir, SMALL);
    const ck = await openCheckpoint(dir);
    assert.equal(ck.config.modelType, "llama");
    assert.equal(ck.dtype, "BF16");
    assert.deepEqual(ck.eosTokenIds, [128001, 128009]);
    assert.equal(ck.tensors.size, 1 + 2 * 9 + 2);
    assert.equal(ck.totalBytes, [...ck.tensors.values()].reduce((s, t) => s + t.byteLength, 0));
    assert.equal(ck.tokenizerJsonPath, join(dir, "tokenizer.json"));
    assert.equal(typeof ck.tokenizerConfig.chat_template, "string");
  });
});

Deno.test("a sharded demo checkpoint loads the same tensors as a single-file one", async () => {
  await withTempDir(async (dir) => {
    const single = join(dir, "single");
    const sharded = join(dir, "sharded");
    const opts: DemoOptions = { ...SMALL, routingLayers: [1], dtype: "F16" };
    await writeDemoCheckpoint(single, opts);
    await writeDemoCheckpoint(sharded, { ...opts, shards: 3 });
    const files = [...Deno.readDirSync(sharded)].map((e) => e.name).filter((n) => n.endsWith(".safetensors"));
    assert.deepEqual(files.sort(), [1, 2, 3].map((i) => `model-0000${i}-of-00003.safetensors`));
    const a = await openCheckpoint(single);
    const b = await openCheckpoint(sharded);
    assert.deepEqual([...b.tensors.keys()].sort(), [...a.tensors.keys()].sort());
    assert.equal(new Set([...b.tensors.values()].map((t) => t.file)).size, 3);
    for (const [name, t] of a.tensors) {
      assert.deepEqual(await readTensorBytes(b.tensors.get(name)!), await readTensorBytes(t), name);
    }
    assert.equal(b.totalBytes, a.totalBytes);
    assert.equal(b.dtype, "F16");
  });
});

Deno.test("stories260K opens and validates", async () => {
  const ck = await openCheckpoint(STORIES);
  assert.equal(ck.config.numLayers, 5);
  assert.equal(ck.config.tieWordEmbeddings, true);
  assert.equal(ck.tensors.has("lm_head.weight"), false);
  assert.equal(ck.dtype, "F32");
  assert.deepEqual(ck.eosTokenIds, [2]);
  assert.deepEqual(ck.config.routingLayers, []);
});

Deno.test("stories260K-flexidepth opens with routers of bottleneck 4 and adapters of 10", async () => {
  const ck = await openCheckpoint(STORIES_FD);
  assert.equal(ck.config.modelType, "ddllama");
  assert.deepEqual(ck.config.routingLayers, [2, 3, 4]);
  for (const layer of [2, 3, 4]) assert.deepEqual(routerDims(ck, layer), { bottleneck: 4, adapter: 10 });
  assert.ok(ck.tensors.has(routerTensorNames(4).up));
});

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

async function editJson(path: string, change: (json: Record<string, unknown>) => void): Promise<void> {
  const json = JSON.parse(await Deno.readTextFile(path));
  change(json);
  await Deno.writeTextFile(path, JSON.stringify(json));
}

Deno.test("broken checkpoint folders give CheckpointErrors that carry the fix", async () => {
  const cases: [string, (dir: string) => Promise<void>, RegExp[], DemoOptions?][] = [
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
});

Deno.test("a missing folder or a file instead of a folder is reported with --model advice", async () => {
  await withTempDir(async (dir) => {
    await rejectsWith(openCheckpoint(join(dir, "nope")), /model folder .*nope not found/, /--model DIR/);
    await Deno.writeTextFile(join(dir, "file"), "");
    await rejectsWith(openCheckpoint(join(dir, "file")), /is not a folder/);
  });
});

Deno.test("generation_config eos ids extend config.json's; tied checkpoints may still carry lm_head", async () => {
  await withTempDir(async (dir) => {
    await writeDemoCheckpoint(dir, SMALL);
    await editJson(join(dir, "config.json"), (c) => {
      c.eos_token_id = 128001;
      c.tie_word_embeddings = true;
    });
    await editJson(join(dir, "generation_config.json"), (g) => (g.eos_token_id = [128009, 128001, 5]));
    const ck = await openCheckpoint(dir);
    assert.deepEqual(ck.eosTokenIds, [128001, 128009, 5]);
    assert.ok(ck.tensors.has("lm_head.weight"));
    await Deno.remove(join(dir, "generation_config.json"));
    await Deno.remove(join(dir, "tokenizer_config.json"));
    const bare = await openCheckpoint(dir);
    assert.equal(bare.generationConfig, null);
    assert.deepEqual(bare.tokenizerConfig, {});
    assert.deepEqual(bare.eosTokenIds, [128001]);
  });
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

Deno.test("Qwen checkpoints: q/k norms and q/k/v biases are checked; a bias the engine would not add is refused", async () => {
  const qwen3: DemoOptions = {
    ...SMALL,
    arch: "qwen3",
    heads: 4,
    kvHeads: 2,
    headDim: 12,
    tieEmbeddings: true,
  };
  const qwen2: DemoOptions = { ...SMALL, arch: "qwen2", heads: 4, kvHeads: 2 };
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
  const oBias = (ts: TensorToWrite[]) => [
    ...ts,
    {
      name: "model.layers.1.self_attn.o_proj.bias",
      dtype: "BF16" as const,
      shape: [32],
      data: new Uint8Array(64),
    },
  ];
  const cases: [string, (ts: TensorToWrite[]) => TensorToWrite[], RegExp[], DemoOptions][] = [
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
  for (const [label, edit, patterns, opts] of cases) {
    const { open, cleanup } = await brokenDemo((d) => editTensors(d, edit), opts);
    try {
      await rejectsWith(open, ...patterns);
    } catch (err) {
      throw new Error(`case "${label}": ${(err as Error).message}`);
    } finally {
      await cleanup();
    }
  }
});
