/**
 * safetensors parsing: round trips of every dtype, data of the wrong size refused, every corruption case,
 * and a file that shrank after its header was read. Checkpoint folders: test/loader_checkpoint.test.ts and
 * test/loader_broken.test.ts.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeToF32, type DType, encodeFromF32, roundTo } from "../src/model/dtype.ts";
import {
  MAX_HEADER_BYTES,
  readSafetensorsHeader,
  readTensorBytes,
  writeSafetensors,
} from "../src/model/safetensors.ts";
import { rejectsWith, withTempDir } from "./loader_fixtures.ts";

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
