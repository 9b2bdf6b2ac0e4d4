/**
 * The safetensors file format: an 8-byte little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [start, end]}, "__metadata__"?: {...}}`, then the data section.
 * Every number in a header is checked against the file's real size before anything is allocated or read,
 * so a truncated or hostile file gives a CheckpointError, never a huge allocation or a read past the end.
 */

import { CheckpointError } from "../errors.ts";
import { type DType, DTYPE_BYTES, isDType } from "./dtype.ts";

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  file: string;
  /** absolute byte offset in file */
  offset: number;
  byteLength: number;
  /** A synthetic tensor (benchmark shapes): its bytes are made, not read. */
  synthesize?: () => Uint8Array<ArrayBuffer>;
}

/** One tensor to write; `data` may be produced lazily so a writer holds one tensor at a time. */
export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: number[];
  data: Uint8Array | (() => Uint8Array);
}

/** Headers larger than this are refused (real ones are kilobytes; this guards the allocation). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const METADATA_KEY = "__metadata__";
const CORRUPT_HINT = "the file is truncated or corrupt; download it again";
/** dtypes the format defines that this engine does not run, to tell "unsupported" from "garbage". */
const KNOWN_UNSUPPORTED = new Set([
  "BOOL",
  "U8",
  "I8",
  "U16",
  "I16",
  "U32",
  "I32",
  "U64",
  "I64",
  "F64",
  "F8_E4M3",
  "F8_E5M2",
  "F8_E8M0",
  "F4",
  "F6_E2M3",
  "F6_E3M2",
]);

/** Stats a path that must be a regular file; a missing one is a CheckpointError. */
async function statFile(path: string): Promise<Deno.FileInfo> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new CheckpointError(
        `${path}: file not found`,
        "check the model folder; download the checkpoint again",
      );
    }
    throw new CheckpointError(
      `${path}: cannot read (${(err as Error).message})`,
      "check the file's permissions",
    );
  }
  if (!info.isFile) throw new CheckpointError(`${path}: not a regular file`, "point at a .safetensors file");
  return info;
}

/** Reads exactly `into.byteLength` bytes at the file's current position (short reads loop). */
async function readExactly(file: Deno.FsFile, into: Uint8Array, path: string, what: string): Promise<void> {
  let done = 0;
  while (done < into.byteLength) {
    const n = await file.read(into.subarray(done));
    if (n === null) {
      throw new CheckpointError(
        `${path}: unexpected end of file while reading ${what} (${done} of ${into.byteLength} bytes)`,
        CORRUPT_HINT,
      );
    }
    done += n;
  }
}

/** Text taken from a file, made fit for a one-line message: control characters escaped, cut to `max`. */
export function clip(text: string, max = 80): string {
  const safe = text.replace(
    // deno-lint-ignore no-control-regex
    /[\u0000-\u001f\u007f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  return safe.length > max ? `${safe.slice(0, max)}…` : safe;
}

/** A JSON value taken from a file, as short one-line text. */
export function show(value: unknown, max = 80): string {
  return clip(JSON.stringify(value) ?? String(value), max);
}

function isSafeCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** Element count of a shape, or null when it overflows a safe integer. */
function elementCount(shape: number[]): number | null {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return null;
  }
  return n;
}

/** Checks one header entry and turns it into a TensorInfo; `dataStart` is the data section's file offset. */
function parseEntry(
  path: string,
  name: string,
  entry: unknown,
  dataStart: number,
  dataSize: number,
): TensorInfo {
  const bad = (what: string) => new CheckpointError(`${path}: tensor "${clip(name)}" ${what}`, CORRUPT_HINT);
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw bad("has no header object");
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== "string") throw bad(`has no dtype string (got ${show(dtype)})`);
  if (!isDType(dtype)) {
    throw new CheckpointError(
      `${path}: unsupported dtype ${clip(dtype, 40)} for tensor "${clip(name)}"`,
      KNOWN_UNSUPPORTED.has(dtype)
        ? "flexidepth runs F32, F16 and BF16 checkpoints; convert the weights to one of these (quantized checkpoints are not supported)"
        : CORRUPT_HINT,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isSafeCount)) {
    throw bad(`has a bad shape ${show(shape)} (expected an array of non-negative integers)`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isSafeCount)) {
    throw bad(`has bad data_offsets ${show(offsets)} (expected [start, end] integers)`);
  }
  const [start, end] = offsets as [number, number];
  if (start > end) throw bad(`has data_offsets [${start}, ${end}] with start after end`);
  if (end > dataSize) {
    throw bad(`has data_offsets [${start}, ${end}] past the end of the data section (${dataSize} bytes)`);
  }
  const count = elementCount(shape);
  const expected = count === null ? null : count * DTYPE_BYTES[dtype];
  if (expected === null || !Number.isSafeInteger(expected) || expected !== end - start) {
    throw bad(
      `has shape ${show(shape)} of ${dtype} (${expected ?? "too many"} bytes) ` +
        `but its data_offsets span ${end - start} bytes (shape/size mismatch)`,
    );
  }
  return { name, dtype, shape: [...shape], file: path, offset: dataStart + start, byteLength: end - start };
}

/** Tensors must not share bytes (zero-length tensors share nothing). */
function checkNoOverlap(path: string, tensors: TensorInfo[]): void {
  let prev: TensorInfo | null = null;
  for (const t of tensors) {
    if (t.byteLength === 0) continue;
    if (prev && t.offset < prev.offset + prev.byteLength) {
      throw new CheckpointError(
        `${path}: tensors "${clip(prev.name)}" and "${clip(t.name)}" overlap in the data section`,
        CORRUPT_HINT,
      );
    }
    prev = t;
  }
}

/** Reads and checks a safetensors header; tensors come back in file order. */
export async function readSafetensorsHeader(path: string): Promise<TensorInfo[]> {
  const fileSize = (await statFile(path)).size;
  if (fileSize < 8) {
    throw new CheckpointError(
      `${path}: file is ${fileSize} bytes, too short for a safetensors header`,
      CORRUPT_HINT,
    );
  }
  using file = await Deno.open(path, { read: true });
  const lengthBytes = new Uint8Array(8);
  await readExactly(file, lengthBytes, path, "the header length");
  const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    throw new CheckpointError(
      `${path}: header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`,
      `${CORRUPT_HINT} (is this really a .safetensors file?)`,
    );
  }
  const dataStart = 8 + Number(headerLength);
  if (dataStart > fileSize) {
    throw new CheckpointError(
      `${path}: header length ${headerLength} runs past the end of the file (${fileSize} bytes)`,
      CORRUPT_HINT,
    );
  }
  const headerBytes = new Uint8Array(Number(headerLength));
  await readExactly(file, headerBytes, path, "the header");
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (err) {
    throw new CheckpointError(
      `${path}: header is not valid JSON (${clip((err as Error).message, 160)})`,
      CORRUPT_HINT,
    );
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new CheckpointError(`${path}: header is not a JSON object`, CORRUPT_HINT);
  }
  const meta = (header as Record<string, unknown>)[METADATA_KEY];
  if (meta !== undefined && (typeof meta !== "object" || meta === null || Array.isArray(meta))) {
    throw new CheckpointError(`${path}: "${METADATA_KEY}" is not a JSON object`, CORRUPT_HINT);
  }
  const dataSize = fileSize - dataStart;
  const tensors = Object.entries(header)
    .filter(([name]) => name !== METADATA_KEY)
    .map(([name, entry]) => parseEntry(path, name, entry, dataStart, dataSize))
    .sort((a, b) => a.offset - b.offset || a.byteLength - b.byteLength);
  checkNoOverlap(path, tensors);
  return tensors;
}

/** Reads one tensor's raw little-endian bytes; the file must still hold them (it may have changed). */
export async function readTensorBytes(t: TensorInfo): Promise<Uint8Array<ArrayBuffer>> {
  if (t.synthesize) return t.synthesize();
  if (!isSafeCount(t.offset) || !isSafeCount(t.byteLength)) {
    throw new CheckpointError(`${t.file}: tensor "${t.name}" has a bad offset or length`, CORRUPT_HINT);
  }
  using file = await Deno.open(t.file, { read: true }).catch((err) => {
    throw err instanceof Deno.errors.NotFound
      ? new CheckpointError(
        `${t.file}: file not found`,
        "the checkpoint changed while loading; open it again",
      )
      : err;
  });
  const size = (await file.stat()).size;
  if (t.offset + t.byteLength > size) {
    throw new CheckpointError(
      `${t.file}: tensor "${t.name}" ends at byte ${
        t.offset + t.byteLength
      }, past the end of the file (${size} bytes)`,
      CORRUPT_HINT,
    );
  }
  await file.seek(t.offset, Deno.SeekMode.Start);
  const out = new Uint8Array(t.byteLength);
  await readExactly(file, out, t.file, `tensor "${t.name}"`);
  return out;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) done += await file.write(bytes.subarray(done));
}

/** The JSON header, padded with spaces so the data section starts 8-byte aligned (as the Python library does). */
function encodeHeader(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header[METADATA_KEY] = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name === METADATA_KEY || t.name in header) {
      throw new CheckpointError(`cannot write tensor "${t.name}": the name is reserved or repeated`);
    }
    const count = elementCount(t.shape);
    if (!t.shape.every(isSafeCount) || count === null) {
      throw new CheckpointError(`cannot write tensor "${t.name}": bad shape [${t.shape.join(", ")}]`);
    }
    const bytes = count * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = new Uint8Array(8 + Math.ceil(json.byteLength / 8) * 8).fill(0x20);
  new DataView(padded.buffer).setBigUint64(0, BigInt(padded.byteLength - 8), true);
  padded.set(json, 8);
  return padded;
}

/** Writes a safetensors file tensor by tensor, in the given order. */
export async function writeSafetensors(
  path: string,
  tensors: TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  const header = encodeHeader(tensors, metadata);
  try {
    using file = await Deno.open(path, { write: true, create: true, truncate: true });
    await writeAll(file, header);
    for (const t of tensors) {
      const data = typeof t.data === "function" ? t.data() : t.data;
      const expected = (elementCount(t.shape) ?? 0) * DTYPE_BYTES[t.dtype];
      if (data.byteLength !== expected) {
        throw new CheckpointError(
          `cannot write tensor "${t.name}": ${data.byteLength} bytes of data for shape ` +
            `[${t.shape.join(", ")}] of ${t.dtype} (${expected} bytes)`,
        );
      }
      await writeAll(file, data);
    }
  } catch (err) {
    // A half-written file would later read as "truncated"; leave nothing instead.
    await Deno.remove(path).catch(() => {});
    throw err;
  }
}
