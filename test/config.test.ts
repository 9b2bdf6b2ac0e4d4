/**
 * config.json parsing of the architectures beside Llama: Qwen3 (q/k norms, head_dim from the config, both
 * RoPE θ layouts), Qwen2/2.5 (q/k/v biases), DMTD's keys, and the errors for what the engine refuses, each
 * carrying its fix.
 */

import { deepStrictEqual as assertEquals, ok, throws } from "node:assert/strict";
import { parseConfig } from "../src/model/config.ts";
import { CheckpointError } from "../src/errors.ts";

type Json = Record<string, unknown>;

/** Qwen3-4B's config.json as transformers ≥ 5 writes it (dmtd-spec.md §1). */
const QWEN3_4B: Json = {
  architectures: ["Qwen3ForCausalLM"],
  model_type: "qwen3",
  vocab_size: 151936,
  hidden_size: 2560,
  intermediate_size: 9728,
  num_hidden_layers: 36,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  head_dim: 128,
  hidden_act: "silu",
  max_position_embeddings: 40960,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
  rope_parameters: { rope_type: "default", rope_theta: 1000000 },
  attention_bias: false,
  use_sliding_window: false,
  sliding_window: 4096,
  max_window_layers: 36,
  bos_token_id: 151643,
  eos_token_id: 151645,
  torch_dtype: "bfloat16",
};

/** Qwen2.5-0.5B-Instruct's config.json (top-level rope_theta, untied in the larger sizes). */
const QWEN25: Json = {
  architectures: ["Qwen2ForCausalLM"],
  model_type: "qwen2",
  vocab_size: 151936,
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  hidden_act: "silu",
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  tie_word_embeddings: true,
  use_sliding_window: false,
  sliding_window: 32768,
  max_window_layers: 21,
  bos_token_id: 151643,
  eos_token_id: 151645,
};

/** The parse must fail with a CheckpointError whose message matches every pattern (the fix among them). */
function refuses(json: Json, ...patterns: RegExp[]): void {
  throws(() => parseConfig(json), (err: unknown) => {
    ok(err instanceof CheckpointError, `expected a CheckpointError, got ${err}`);
    for (const p of patterns) ok(p.test(err.message), `"${err.message}" should match ${p}`);
    return true;
  });
}

Deno.test("config: Qwen3 — q/k norms, head_dim ≠ hidden / heads, rope_parameters, eps and tied head", () => {
  const c = parseConfig(QWEN3_4B);
  assertEquals([c.architecture, c.qkNorm, c.attentionBias], ["qwen3", true, false]);
  assertEquals([c.headDim, c.hiddenSize / c.numHeads], [128, 80]);
  assertEquals([c.ropeTheta, c.ropeScaling, c.rmsNormEps, c.tieWordEmbeddings], [1e6, null, 1e-6, true]);
  assertEquals([c.dmtd, c.routingLayers], [null, []]);
  // The layout of transformers < 5: rope_theta at the top level, rope_scaling null.
  const { rope_parameters: _, ...legacy } = QWEN3_4B;
  const old = parseConfig({ ...legacy, rope_theta: 1000000, rope_scaling: null });
  assertEquals([old.ropeTheta, old.ropeScaling], [1e6, null]);
  // Both, agreeing, are fine.
  assertEquals(parseConfig({ ...QWEN3_4B, rope_theta: 1e6 }).ropeTheta, 1e6);
  // rope_parameters also carries a scaling's type and factors (a Llama 3 under transformers ≥ 5).
  const scaled = parseConfig({
    ...QWEN3_4B,
    rope_parameters: {
      rope_type: "llama3",
      rope_theta: 500000,
      factor: 8,
      original_max_position_embeddings: 8192,
    },
  });
  assertEquals([scaled.ropeTheta, scaled.ropeScaling?.type, scaled.ropeScaling?.factor], [
    500000,
    "llama3",
    8,
  ]);
});

Deno.test("config: Qwen2/2.5 has q/k/v biases; the architecture comes from model_type, else architectures", () => {
  const c = parseConfig(QWEN25);
  assertEquals([c.architecture, c.qkNorm, c.attentionBias, c.headDim, c.ropeTheta], [
    "qwen2",
    false,
    true,
    64,
    1e6,
  ]);
  // Without a model_type, `architectures` decides; a model_type of another family is refused whatever it says.
  const byClass = (name: string) =>
    parseConfig({ ...QWEN3_4B, model_type: undefined, architectures: [name] });
  assertEquals(byClass("Qwen3ForCausalLM").architecture, "qwen3");
  assertEquals(byClass("DMTDQwen3ForCausalLM").architecture, "qwen3");
  assertEquals(byClass("Qwen2ForCausalLM").architecture, "qwen2");
  assertEquals(byClass("LlamaForCausalLM").architecture, "llama");
  const llama = parseConfig({ ...QWEN3_4B, model_type: "llama", architectures: undefined });
  assertEquals([llama.architecture, llama.qkNorm, llama.attentionBias], ["llama", false, false]);
  assertEquals(
    parseConfig({ ...QWEN3_4B, model_type: "ddllama", routing_layers: [3] }).architecture,
    "llama",
  );
  refuses({ ...QWEN3_4B, model_type: "gpt2" }, /unsupported architecture "gpt2"/);
  refuses(
    { ...QWEN3_4B, model_type: "qwen3_moe", architectures: ["Qwen3MoeForCausalLM"] },
    /unsupported architecture "qwen3_moe"/,
    /qwen2, qwen3/,
  );
});

Deno.test("config: DMTD keys parse into the layer split and cycle", () => {
  const dmtd = {
    ...QWEN3_4B,
    model_type: "dmtdqwen3",
    architectures: ["DMTDQwen3ForCausalLM"],
    num_encoding_layers: 0,
    num_thinking_layers: 28,
    num_decoding_layers: 8,
    mtp_horizon: 4,
  };
  const c = parseConfig(dmtd);
  assertEquals(c.architecture, "qwen3");
  assertEquals(c.dmtd, { encodingLayers: 0, thinkingLayers: 28, decodingLayers: 8, cycle: 4 });
  // num_encoding_layers may be absent; the keys on a plain qwen3 model_type count too.
  const { num_encoding_layers: _, ...noEnc } = dmtd;
  assertEquals(parseConfig({ ...noEnc, model_type: "qwen3", mtp_horizon: 1 }).dmtd?.cycle, 1);
});

Deno.test("config: DMTD, sliding-window and bias errors are CheckpointErrors that carry the fix", () => {
  const dmtd = {
    ...QWEN3_4B,
    model_type: "dmtdqwen3",
    num_thinking_layers: 28,
    num_decoding_layers: 8,
    mtp_horizon: 4,
  };
  refuses(
    { ...dmtd, num_encoding_layers: 2 },
    /num_encoding_layers 2 is not supported/,
    /set num_encoding_layers to 0/,
  );
  refuses(
    { ...dmtd, num_decoding_layers: 9 },
    /28 \+ num_decoding_layers 9 is not num_hidden_layers 36/,
    /add up to 36/,
  );
  refuses({ ...dmtd, mtp_horizon: 0 }, /"mtp_horizon" must be a positive integer, got 0/, /fix the value/);
  refuses({ ...dmtd, mtp_horizon: undefined }, /DMTD key "mtp_horizon" missing/, /mtp_horizon τ/);
  refuses({ ...QWEN3_4B, model_type: "dmtdqwen3" }, /DMTD key "num_thinking_layers" missing/, /T \+ D/);
  refuses({ ...QWEN3_4B, num_decoding_layers: 8 }, /"num_thinking_layers" missing/);
  refuses(
    { ...QWEN25, use_sliding_window: true },
    /sliding-window attention/,
    /set use_sliding_window to false/,
  );
  refuses(
    { ...QWEN3_4B, attention_bias: true },
    /not supported for qwen3: they include o_proj's/,
    /attention_bias false/,
  );
  refuses({ ...QWEN3_4B, model_type: "llama", attention_bias: true }, /not supported for llama/);
  refuses({ ...QWEN25, mlp_bias: true }, /MLP biases are not supported/, /mlp_bias false/);
  refuses(
    { ...QWEN3_4B, rope_theta: 10000 },
    /rope_theta 10000 and rope_parameters\.rope_theta 1000000 disagree/,
    /remove one/,
  );
  refuses(
    { ...QWEN3_4B, rope_parameters: { rope_theta: -1 } },
    /rope_parameters: "rope_theta" must be a positive number/,
  );
  refuses({ ...QWEN3_4B, rope_parameters: [1] }, /"rope_parameters" must be an object/, /fix the value/);
  refuses(
    { ...QWEN3_4B, rope_parameters: { rope_type: "yarn", rope_theta: 1e6 } },
    /unsupported rope_scaling type "yarn"/,
  );
  // Qwen2's biases need no key: attention_bias false there does not remove them (transformers ignores it).
  assertEquals(parseConfig({ ...QWEN25, attention_bias: false }).attentionBias, true);
});
