/**
 * Seeded random mutations of a valid safetensors file for the checkpoint fuzzer (test/fuzz.test.ts): byte
 * noise, wrong header lengths, truncation, extension, and structured edits of the header JSON (fields,
 * entries, duplicate keys, tensors out of bounds, metadata) re-encoded with a correct length.
 */

import { byteNoise, Dup, int, mutateValue, pick, type Rng, toJson, weird } from "./fuzz_values.ts";

/** A mutated file and what was done to it (for the failure message). */
export interface Mutation {
  bytes: Uint8Array;
  what: string;
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

/** The header length field set to a value around or far from the true one. */
function wrongLength(rng: Rng, original: Uint8Array, headerEnd: number): Mutation {
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

/** Mutations of the raw bytes (`kind` 0–6 of mutateSafetensors); 6 leaves the file as it is. */
function mutateBytes(rng: Rng, original: Uint8Array, headerEnd: number, kind: number): Mutation {
  switch (kind) {
    case 0:
      return { bytes: byteNoise(rng, original, 8, headerEnd), what: "header byte noise" };
    case 1:
      return { bytes: byteNoise(rng, original, 0, 8), what: "length field byte noise" };
    case 2:
      return wrongLength(rng, original, headerEnd);
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
    default:
      return { bytes: original.slice(), what: "unchanged" };
  }
}

/** One field (dtype, shape, data_offsets) of a tensor entry deleted or made odd. */
function editField(rng: Rng, entries: [string, unknown][], i: number, what: string[]): void {
  const [name, entry] = entries[i];
  const field = pick(rng, ["dtype", "shape", "data_offsets", "data_offsets"]);
  const copy = { ...(entry as Record<string, unknown>) };
  if (rng() < 0.15) delete copy[field];
  else if (field === "dtype") {
    copy.dtype = rng() < 0.5 ? pick(rng, ["F32", "F16", "BF16", "I8", "F64", "Q4", "", "bf16"]) : weird(rng);
  } else copy[field] = mutateValue(rng, copy[field]);
  entries[i] = [name, copy];
  what.push(`${name}.${field}`);
}

/** A new tensor entry, under an odd or existing name, with offsets anywhere in or past the data. */
function addTensor(
  rng: Rng,
  entries: [string, unknown][],
  names: string[],
  data: Uint8Array,
  what: string[],
) {
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
}

/** One random edit of the header's entries; false when it left none (no more edits then). */
function editEntry(
  rng: Rng,
  entries: [string, unknown][],
  names: string[],
  data: Uint8Array,
  what: string[],
): boolean {
  const i = int(rng, entries.length);
  const [name, entry] = entries[i];
  const op = int(rng, 9);
  if (op <= 3 && typeof entry === "object" && entry !== null && name !== "__metadata__") {
    editField(rng, entries, i, what);
  } else if (op === 4) {
    entries[i] = [name, weird(rng)];
    what.push(`${name} = weird`);
  } else if (op === 5) {
    entries.splice(i, 1);
    what.push(`drop ${name}`);
    if (entries.length === 0) return false;
  } else if (op === 6) {
    // A duplicate key: JSON.parse keeps the last one.
    const other = entries[int(rng, entries.length)][1];
    entries.splice(int(rng, entries.length + 1), 0, [name, rng() < 0.5 ? other : mutateValue(rng, entry)]);
    what.push(`duplicate ${name}`);
  } else if (op === 7) {
    addTensor(rng, entries, names, data, what);
  } else {
    entries.push(["__metadata__", rng() < 0.5 ? weird(rng) : { format: weird(rng) }]);
    what.push("metadata");
  }
  return true;
}

/** Structured edits of the header JSON, re-encoded with a correct length. */
function editHeader(rng: Rng, original: Uint8Array): Mutation {
  const { header, data } = splitSafetensors(original);
  const entries: [string, unknown][] = Object.entries(header);
  const names = entries.map(([k]) => k);
  const what: string[] = [];
  const edits = 1 + int(rng, 3);
  for (let e = 0; e < edits; e++) {
    if (!editEntry(rng, entries, names, data, what)) break;
  }
  let text = toJson(new Dup(entries));
  if (rng() < 0.3) text += " ".repeat(int(rng, 9));
  if (rng() < 0.1) text = " " + text;
  const dataOut = rng() < 0.2 ? data.slice(0, int(rng, data.byteLength)) : data;
  return { bytes: joinSafetensors(text, dataOut), what: `header edits: ${what.join(", ")}` };
}

/** One random mutation of a valid safetensors file (sometimes none: the file must then read). */
export function mutateSafetensors(rng: Rng, original: Uint8Array): Mutation {
  const headerEnd = 8 + Number(new DataView(original.buffer, original.byteOffset).getBigUint64(0, true));
  const kind = int(rng, 12);
  return kind <= 6 ? mutateBytes(rng, original, headerEnd, kind) : editHeader(rng, original);
}
