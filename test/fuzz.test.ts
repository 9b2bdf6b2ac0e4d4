/**
 * Fuzzing the checkpoint parsers: a tiny demo checkpoint's safetensors files, config.json and shard index
 * are mutated at random (seeded, so a failure replays: FLEXIDEPTH_FUZZ_SEED picks another run) and read
 * with readSafetensorsHeader / openCheckpoint. Every case must end in success on a valid file or in a
 * one-line CheckpointError — never another exception, a hang, a large allocation or a read past the file.
 * The mutations are in fuzz_values.ts, fuzz_safetensors.ts and fuzz_checkpoint_files.ts; the case runner
 * and its checks in fuzz_runner.ts.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Checkpoint, openCheckpoint } from "../src/model/checkpoint.ts";
import { type DemoOptions, writeDemoCheckpoint } from "../src/model/demo.ts";
import { readSafetensorsHeader } from "../src/model/safetensors.ts";
import { mulberry32 } from "../src/util/random.ts";
import { mutateConfig, mutateIndex } from "./fuzz_checkpoint_files.ts";
import { checkTensors, Fuzzer } from "./fuzz_runner.ts";
import { mutateSafetensors } from "./fuzz_safetensors.ts";
import { int, type Rng } from "./fuzz_values.ts";

const SEED = Number(Deno.env.get("FLEXIDEPTH_FUZZ_SEED") ?? 20250307);
/** Cases per family; a few thousand in all, well under 30 s. */
const CASES = { safetensors: 1500, folder: 300, config: 600, index: 400, shard: 200 };
const SMALL: DemoOptions = {
  vocabSize: 300,
  hidden: 32,
  heads: 4,
  kvHeads: 2,
  headDim: 8,
  intermediate: 64,
  layers: 2,
  routingLayers: [1],
};

const tmp = await Deno.makeTempDir({ prefix: "flexidepth-fuzz-" });
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

/** The two demo checkpoints the cases mutate (one file, three shards), their valid files, the runner. */
interface Fixture {
  fuzz: Fuzzer;
  rng: Rng;
  single: string;
  sharded: string;
  modelPath: string;
  modelBytes: Uint8Array;
  configPath: string;
  configText: string;
  indexPath: string;
  indexText: string;
  shardNames: string[];
  shardBytes: Uint8Array[];
}

async function fixture(): Promise<Fixture> {
  const single = join(tmp, "single");
  const sharded = join(tmp, "sharded");
  await writeDemoCheckpoint(single, SMALL);
  await writeDemoCheckpoint(sharded, { ...SMALL, shards: 3 });
  await openCheckpoint(single);
  await openCheckpoint(sharded);
  const fuzz = new Fuzzer();
  const rng = mulberry32(SEED);
  const modelPath = join(single, "model.safetensors");
  const modelBytes = await Deno.readFile(modelPath);
  const configPath = join(single, "config.json");
  const configText = await Deno.readTextFile(configPath);
  const indexPath = join(sharded, "model.safetensors.index.json");
  const indexText = await Deno.readTextFile(indexPath);
  const shardNames = [1, 2, 3].map((i) => `model-0000${i}-of-00003.safetensors`);
  const shardBytes = await Promise.all(shardNames.map((n) => Deno.readFile(join(sharded, n))));
  return {
    fuzz,
    rng,
    single,
    sharded,
    modelPath,
    modelBytes,
    configPath,
    configText,
    indexPath,
    indexText,
    shardNames,
    shardBytes,
  };
}

const openOk = async (ck: Checkpoint, label: string) => {
  assert.ok(Number.isSafeInteger(ck.totalBytes), label);
  await checkTensors(ck.tensors.values(), label);
};

/** 1. safetensors files alone. */
async function fuzzSafetensorsFiles({ fuzz, rng, modelBytes }: Fixture): Promise<void> {
  const loose = join(tmp, "case.safetensors");
  for (let i = 0; i < CASES.safetensors; i++) {
    const { bytes, what } = mutateSafetensors(rng, modelBytes);
    await Deno.writeFile(loose, bytes);
    const label = `safetensors case ${i} (seed ${SEED}, ${what})`;
    await fuzz.run(label, () => readSafetensorsHeader(loose), (ts) => checkTensors(ts, label));
  }
}

/** 2. The same mutations inside a checkpoint folder. */
async function fuzzFolder({ fuzz, rng, single, modelPath, modelBytes }: Fixture): Promise<void> {
  for (let i = 0; i < CASES.folder; i++) {
    const { bytes, what } = mutateSafetensors(rng, modelBytes);
    await Deno.writeFile(modelPath, bytes);
    const label = `folder case ${i} (seed ${SEED}, ${what})`;
    await fuzz.run(label, () => openCheckpoint(single), (ck) => openOk(ck, label));
  }
  await Deno.writeFile(modelPath, modelBytes);
}

/** 3. config.json: deleted keys, values of the wrong type or size, byte noise, truncation. */
async function fuzzConfig({ fuzz, rng, single, configPath, configText }: Fixture): Promise<void> {
  const keys = Object.keys(JSON.parse(configText));
  for (let i = 0; i < CASES.config; i++) {
    const { text, what } = mutateConfig(rng, configText, keys);
    await Deno.writeTextFile(configPath, text);
    const label = `config case ${i} (seed ${SEED}, ${what.join(", ")})`;
    await fuzz.run(label, () => openCheckpoint(single), (ck) => openOk(ck, label));
  }
  await Deno.writeTextFile(configPath, configText);
}

/** 4. The shard index: missing shards, bad weight_map types and names. */
async function fuzzIndex(f: Fixture): Promise<void> {
  const { fuzz, rng, sharded, indexPath, indexText, shardNames, shardBytes } = f;
  const names = Object.keys(JSON.parse(indexText).weight_map);
  for (let i = 0; i < CASES.index; i++) {
    const { text, what, removed } = mutateIndex(rng, indexText, names, shardNames);
    if (removed !== null) await Deno.remove(join(sharded, shardNames[removed]));
    await Deno.writeTextFile(indexPath, text);
    const label = `index case ${i} (seed ${SEED}, ${what.join(", ")})`;
    await fuzz.run(label, () => openCheckpoint(sharded), (ck) => openOk(ck, label));
    if (removed !== null) await Deno.writeFile(join(sharded, shardNames[removed]), shardBytes[removed]);
  }
  await Deno.writeTextFile(indexPath, indexText);
}

/** 5. One shard of a sharded checkpoint mutated. */
async function fuzzShards({ fuzz, rng, sharded, shardNames, shardBytes }: Fixture): Promise<void> {
  for (let i = 0; i < CASES.shard; i++) {
    const s = int(rng, shardNames.length);
    const { bytes, what } = mutateSafetensors(rng, shardBytes[s]);
    await Deno.writeFile(join(sharded, shardNames[s]), bytes);
    const label = `shard case ${i} (seed ${SEED}, shard ${s}: ${what})`;
    await fuzz.run(label, () => openCheckpoint(sharded), (ck) => openOk(ck, label));
    await Deno.writeFile(join(sharded, shardNames[s]), shardBytes[s]);
  }
}

Deno.test("fuzz: mutated safetensors files, config.json and shard indexes give a result or a CheckpointError", async () => {
  const t0 = performance.now();
  const f = await fixture();
  await fuzzSafetensorsFiles(f);
  await fuzzFolder(f);
  await fuzzConfig(f);
  await fuzzIndex(f);
  await fuzzShards(f);

  const { fuzz } = f;
  const total = fuzz.counts.ok + fuzz.counts.error;
  assert.equal(total, Object.values(CASES).reduce((a, b) => a + b, 0));
  // Both outcomes occur: the mutations are neither all harmless nor all fatal.
  assert.ok(fuzz.counts.ok > 50 && fuzz.counts.error > total / 2, JSON.stringify(fuzz.counts));
  assert.ok(fuzz.messages.size > 30, `only ${fuzz.messages.size} distinct errors`);
  console.log(
    `fuzz: ${total} cases (seed ${SEED}) in ${((performance.now() - t0) / 1000).toFixed(1)} s: ` +
      `${fuzz.counts.ok} read, ${fuzz.counts.error} CheckpointErrors of ${fuzz.messages.size} kinds`,
  );
});
