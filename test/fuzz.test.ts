/**
 * Fuzzing the checkpoint parsers: a tiny demo checkpoint's safetensors files, config.json and shard index
 * are mutated at random (seeded, so a failure replays: FLEXIDEPTH_FUZZ_SEED picks another run) and read
 * with readSafetensorsHeader / openCheckpoint. Every case must end in success on a valid file or in a
 * one-line CheckpointError — never another exception, a hang, a large allocation or a read past the file.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CheckpointError } from "../src/errors.ts";
import { type Checkpoint, openCheckpoint } from "../src/model/checkpoint.ts";
import { type DemoOptions, writeDemoCheckpoint } from "../src/model/demo.ts";
import { DTYPE_BYTES } from "../src/model/dtype.ts";
import { readSafetensorsHeader, readTensorBytes, type TensorInfo } from "../src/model/safetensors.ts";
import { mulberry32 } from "../src/util/random.ts";

const SEED = Number(Deno.env.get("FLEXIDEPTH_FUZZ_SEED") ?? 20250307);
/** Cases per family; a few thousand in all, well under 30 s. */
const CASES = { safetensors: 1500, folder: 300, config: 600, index: 400, shard: 200 };
const CASE_TIMEOUT_MS = 5_000;
/** Resident memory may grow this much over the baseline (the files are ~100 KB). */
const RSS_SLACK = 256 * 2 ** 20;
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

type Rng = () => number;
const int = (rng: Rng, n: number) => Math.floor(rng() * n);
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, xs.length)];

/** Raw JSON text spliced into a serialized value (JSON.stringify cannot write 1e999 or deep nesting). */
class Raw {
  constructor(readonly text: string) {}
}

function toJson(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (Array.isArray(v)) return `[${v.map(toJson).join(",")}]`;
  if (v instanceof Dup) {
    return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`).join(",")}}`;
  }
  if (typeof v === "object" && v !== null) {
    return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/** An object written with its entries as listed, so keys may repeat. */
class Dup {
  constructor(readonly entries: [string, unknown][]) {}
}

const deep = (depth: number, open: string, close: string, inner = "") =>
  new Raw(open.repeat(depth) + inner + close.repeat(depth));

/** Values that break parsers: huge, negative, fractional, wrong types, deep nesting. */
function weird(rng: Rng): unknown {
  switch (int(rng, 6)) {
    case 0:
      return pick(rng, [
        -1,
        0,
        1,
        2,
        3,
        7,
        255,
        2 ** 31 - 1,
        2 ** 31,
        2 ** 32,
        2 ** 53 - 1,
        2 ** 53,
        2 ** 64,
      ]);
    case 1:
      return pick(rng, [-(2 ** 53), -0.5, 1.5, 1e308, -1e308, 5e-324]);
    case 2:
      return pick(rng, [
        new Raw("1e999"),
        new Raw("-1e999"),
        new Raw("-0"),
        new Raw("123456789012345678901234567890"),
        new Raw("1E+400"),
      ]);
    case 3:
      return pick(rng, [null, true, false, "", "F32", "7", "llama", "x\ny", "\u0000", "é".repeat(50)]);
    case 4:
      return pick(rng, [[], {}, [1], [[1]], { a: 1 }, [null], ["1", "2"], Array(50).fill(2 ** 40)]);
    default: {
      const depth = pick(rng, [64, 1000, 20_000, 200_000]);
      return rng() < 0.5 ? deep(depth, "[", "]") : deep(depth, '{"a":', "}", "1");
    }
  }
}

function mutateValue(rng: Rng, v: unknown): unknown {
  if (Array.isArray(v) && v.length > 0 && rng() < 0.6) {
    const out = [...v];
    switch (int(rng, 5)) {
      case 0:
        out[int(rng, out.length)] = weird(rng);
        break;
      case 1:
        out.splice(int(rng, out.length), 1);
        break;
      case 2:
        out.push(pick(rng, [0, 1, 2, weird(rng)]));
        break;
      case 3:
        out.reverse();
        break;
      default:
        if (typeof out[0] === "number") {
          out[int(rng, out.length)] = (out[int(rng, out.length)] as number) + pick(rng, [-1, 1, 2, -8, 8]);
        }
    }
    return out;
  }
  return weird(rng);
}

/** Flips, overwrites or inserts bytes in `bytes[from, to)`. */
function byteNoise(rng: Rng, bytes: Uint8Array, from: number, to: number): Uint8Array {
  const out = bytes.slice();
  const n = 1 + int(rng, 8);
  for (let i = 0; i < n && to > from; i++) {
    const at = from + int(rng, to - from);
    out[at] = rng() < 0.5
      ? out[at] ^ (1 << int(rng, 8))
      : pick(rng, [0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x5c, 0x00, 0xff, 0x0a, 0x30, 0x39, 0x2d, 0xc3]);
  }
  return out;
}

interface SafetensorsParts {
  header: Record<string, unknown>;
  data: Uint8Array;
}

function splitSafetensors(bytes: Uint8Array): SafetensorsParts {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return {
    header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))),
    data: bytes.subarray(8 + n),
  };
}

function joinSafetensors(headerText: string, data: Uint8Array, length?: bigint): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

/** One random mutation of a valid safetensors file (sometimes none: the file must then read). */
function mutateSafetensors(rng: Rng, original: Uint8Array): { bytes: Uint8Array; what: string } {
  const headerEnd = 8 + Number(new DataView(original.buffer, original.byteOffset).getBigUint64(0, true));
  const kind = int(rng, 12);
  switch (kind) {
    case 0:
      return { bytes: byteNoise(rng, original, 8, headerEnd), what: "header byte noise" };
    case 1:
      return { bytes: byteNoise(rng, original, 0, 8), what: "length field byte noise" };
    case 2: {
      const out = original.slice();
      const len = pick(rng, [
        0n,
        1n,
        2n ** 64n - 1n,
        2n ** 63n,
        2n ** 53n + 1n,
        BigInt(100 * 2 ** 20),
        BigInt(100 * 2 ** 20 + 1),
        BigInt(headerEnd - 8 - 1),
        BigInt(headerEnd - 8 + 1),
        BigInt(original.byteLength - 8),
        BigInt(original.byteLength - 7),
        BigInt(int(rng, 2 ** 31)),
      ]);
      new DataView(out.buffer).setBigUint64(0, len, true);
      return { bytes: out, what: `header length ${len}` };
    }
    case 3:
      return { bytes: original.slice(0, int(rng, original.byteLength)), what: "truncated anywhere" };
    case 4: {
      const at = headerEnd + int(rng, original.byteLength - headerEnd);
      return { bytes: original.slice(0, at), what: `data truncated at ${at}` };
    }
    case 5: {
      const extra = new Uint8Array(int(rng, 64));
      const out = new Uint8Array(original.byteLength + extra.byteLength);
      out.set(original);
      return { bytes: out, what: "data extended (valid)" };
    }
    case 6:
      return { bytes: original.slice(), what: "unchanged" };
    default: {
      // Structured edits of the header JSON, re-encoded with a correct length.
      const { header, data } = splitSafetensors(original);
      const entries: [string, unknown][] = Object.entries(header);
      const names = entries.map(([k]) => k);
      const what: string[] = [];
      const edits = 1 + int(rng, 3);
      for (let e = 0; e < edits; e++) {
        const i = int(rng, entries.length);
        const [name, entry] = entries[i];
        const op = int(rng, 9);
        if (op <= 3 && typeof entry === "object" && entry !== null && name !== "__metadata__") {
          const field = pick(rng, ["dtype", "shape", "data_offsets", "data_offsets"]);
          const copy = { ...(entry as Record<string, unknown>) };
          if (rng() < 0.15) delete copy[field];
          else if (field === "dtype") {
            copy.dtype = rng() < 0.5
              ? pick(rng, ["F32", "F16", "BF16", "I8", "F64", "Q4", "", "bf16"])
              : weird(rng);
          } else copy[field] = mutateValue(rng, copy[field]);
          entries[i] = [name, copy];
          what.push(`${name}.${field}`);
        } else if (op === 4) {
          entries[i] = [name, weird(rng)];
          what.push(`${name} = weird`);
        } else if (op === 5) {
          entries.splice(i, 1);
          what.push(`drop ${name}`);
          if (entries.length === 0) break;
        } else if (op === 6) {
          // A duplicate key: JSON.parse keeps the last one.
          const other = entries[int(rng, entries.length)][1];
          entries.splice(int(rng, entries.length + 1), 0, [
            name,
            rng() < 0.5 ? other : mutateValue(rng, entry),
          ]);
          what.push(`duplicate ${name}`);
        } else if (op === 7) {
          const start = pick(rng, [0, 8, int(rng, data.byteLength + 16)]);
          const end = start + pick(rng, [0, 4, 16, int(rng, 4096)]);
          const newName = pick(rng, [
            "extra",
            "__proto__",
            "",
            "a\nb",
            "x".repeat(300),
            names[int(rng, names.length)],
          ]);
          entries.push([newName, {
            dtype: pick(rng, ["F32", "BF16"]),
            shape: [(end - start) >> 1],
            data_offsets: [start, end],
          }]);
          what.push(`add ${JSON.stringify(newName).slice(0, 20)}`);
        } else {
          entries.push(["__metadata__", rng() < 0.5 ? weird(rng) : { format: weird(rng) }]);
          what.push("metadata");
        }
      }
      let text = toJson(new Dup(entries));
      if (rng() < 0.3) text += " ".repeat(int(rng, 9));
      if (rng() < 0.1) text = " " + text;
      const dataOut = rng() < 0.2 ? data.slice(0, int(rng, data.byteLength)) : data;
      return { bytes: joinSafetensors(text, dataOut), what: `header edits: ${what.join(", ")}` };
    }
  }
}

const baselineRss = () => Deno.memoryUsage().rss;

class Fuzzer {
  readonly counts = { ok: 0, error: 0 };
  readonly messages = new Map<string, number>();
  private readonly rssCap = baselineRss() + RSS_SLACK;

  /** Runs one case: success (checked by `onOk`) or a one-line CheckpointError, in time and memory. */
  async run<T>(label: string, body: () => Promise<T>, onOk: (v: T) => Promise<void> | void): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${label}: no answer within ${CASE_TIMEOUT_MS} ms`)),
        CASE_TIMEOUT_MS,
      );
    });
    let result: T;
    try {
      result = await Promise.race([body(), timeout]);
    } catch (err) {
      clearTimeout(timer);
      if (!(err instanceof CheckpointError)) {
        const e = err as Error;
        assert.fail(
          `${label}: expected a CheckpointError, got ${e?.name}: ${String(e?.message).slice(0, 300)}`,
        );
      }
      assert.ok(err.message.length > 0, `${label}: empty message`);
      assert.ok(
        !/[\n\r]/.test(err.message),
        `${label}: message spans lines: ${JSON.stringify(err.message.slice(0, 300))}`,
      );
      assert.ok(err.message.length < 2000, `${label}: message of ${err.message.length} characters`);
      this.counts.error++;
      const key = err.message.replace(/\/[^ ]*\//g, "").replace(/\d+/g, "N").slice(0, 60);
      this.messages.set(key, (this.messages.get(key) ?? 0) + 1);
      this.checkMemory(label);
      return;
    }
    clearTimeout(timer);
    await onOk(result);
    this.counts.ok++;
    this.checkMemory(label);
  }

  private checkMemory(label: string): void {
    const rss = baselineRss();
    assert.ok(rss < this.rssCap, `${label}: resident memory ${(rss / 2 ** 20).toFixed(0)} MiB over the cap`);
  }
}

/** A successful read must describe tensors that lie wholly inside their file's data section. */
async function checkTensors(tensors: Iterable<TensorInfo>, label: string): Promise<void> {
  const sizes = new Map<string, number>();
  for (const t of tensors) {
    let size = sizes.get(t.file);
    if (size === undefined) sizes.set(t.file, size = (await Deno.stat(t.file)).size);
    const count = t.shape.reduce((a, b) => a * b, 1);
    assert.ok(Number.isSafeInteger(t.offset) && t.offset >= 8, `${label}: ${t.name} offset ${t.offset}`);
    assert.equal(t.byteLength, count * DTYPE_BYTES[t.dtype], `${label}: ${t.name} length`);
    assert.ok(t.offset + t.byteLength <= size, `${label}: ${t.name} ends past the file`);
    if (t.byteLength <= 1 << 16) assert.equal((await readTensorBytes(t)).byteLength, t.byteLength);
  }
}

const tmp = await Deno.makeTempDir({ prefix: "flexidepth-fuzz-" });
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

Deno.test("fuzz: mutated safetensors files, config.json and shard indexes give a result or a CheckpointError", async () => {
  const t0 = performance.now();
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
  const openOk = async (ck: Checkpoint, label: string) => {
    assert.ok(Number.isSafeInteger(ck.totalBytes), label);
    await checkTensors(ck.tensors.values(), label);
  };

  // 1. safetensors files alone.
  const loose = join(tmp, "case.safetensors");
  for (let i = 0; i < CASES.safetensors; i++) {
    const { bytes, what } = mutateSafetensors(rng, modelBytes);
    await Deno.writeFile(loose, bytes);
    const label = `safetensors case ${i} (seed ${SEED}, ${what})`;
    await fuzz.run(label, () => readSafetensorsHeader(loose), (ts) => checkTensors(ts, label));
  }

  // 2. The same mutations inside a checkpoint folder.
  for (let i = 0; i < CASES.folder; i++) {
    const { bytes, what } = mutateSafetensors(rng, modelBytes);
    await Deno.writeFile(modelPath, bytes);
    const label = `folder case ${i} (seed ${SEED}, ${what})`;
    await fuzz.run(label, () => openCheckpoint(single), (ck) => openOk(ck, label));
  }
  await Deno.writeFile(modelPath, modelBytes);

  // 3. config.json: deleted keys, values of the wrong type or size, byte noise, truncation.
  const keys = Object.keys(JSON.parse(configText));
  const extraKeys = [
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
  for (let i = 0; i < CASES.config; i++) {
    const cfg = JSON.parse(configText) as Record<string, unknown>;
    const what: string[] = [];
    let text: string;
    const kind = int(rng, 10);
    if (kind === 0) {
      const bytes = byteNoise(rng, new TextEncoder().encode(configText), 0, configText.length);
      text = new TextDecoder().decode(bytes);
      what.push("byte noise");
    } else if (kind === 1) {
      text = configText.slice(0, int(rng, configText.length));
      what.push("truncated");
    } else {
      for (let e = 1 + int(rng, 3); e > 0; e--) {
        const key = rng() < 0.8 ? pick(rng, keys) : pick(rng, extraKeys);
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
      text = toJson(cfg);
    }
    await Deno.writeTextFile(configPath, text);
    const label = `config case ${i} (seed ${SEED}, ${what.join(", ")})`;
    await fuzz.run(label, () => openCheckpoint(single), (ck) => openOk(ck, label));
  }
  await Deno.writeTextFile(configPath, configText);

  // 4. The shard index: missing shards, bad weight_map types and names.
  const names = Object.keys(JSON.parse(indexText).weight_map);
  for (let i = 0; i < CASES.index; i++) {
    const index = JSON.parse(indexText) as { weight_map: unknown };
    const map = index.weight_map as Record<string, unknown>;
    let text: string;
    const what: string[] = [];
    let removed: number | null = null;
    const kind = int(rng, 8);
    if (kind === 0) {
      text = new TextDecoder().decode(
        byteNoise(rng, new TextEncoder().encode(indexText), 0, indexText.length),
      );
      what.push("byte noise");
    } else if (kind === 1) {
      index.weight_map = weird(rng);
      text = toJson(index);
      what.push("weight_map weird");
    } else if (kind === 2) {
      removed = int(rng, shardNames.length);
      await Deno.remove(join(sharded, shardNames[removed]));
      text = indexText;
      what.push(`shard ${removed} missing`);
    } else {
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
      text = toJson(index);
    }
    await Deno.writeTextFile(indexPath, text);
    const label = `index case ${i} (seed ${SEED}, ${what.join(", ")})`;
    await fuzz.run(label, () => openCheckpoint(sharded), (ck) => openOk(ck, label));
    if (removed !== null) await Deno.writeFile(join(sharded, shardNames[removed]), shardBytes[removed]);
  }
  await Deno.writeTextFile(indexPath, indexText);

  // 5. One shard of a sharded checkpoint mutated.
  for (let i = 0; i < CASES.shard; i++) {
    const s = int(rng, shardNames.length);
    const { bytes, what } = mutateSafetensors(rng, shardBytes[s]);
    await Deno.writeFile(join(sharded, shardNames[s]), bytes);
    const label = `shard case ${i} (seed ${SEED}, shard ${s}: ${what})`;
    await fuzz.run(label, () => openCheckpoint(sharded), (ck) => openOk(ck, label));
    await Deno.writeFile(join(sharded, shardNames[s]), shardBytes[s]);
  }

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
