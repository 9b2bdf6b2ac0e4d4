/**
 * Seeded random edits for the checkpoint fuzzer (test/fuzz.test.ts): values that break JSON readers (huge,
 * negative, fractional, of the wrong type, deeply nested), edits of a value, byte noise, and a JSON writer
 * that can splice raw text and repeat keys.
 */

export type Rng = () => number;
export const int = (rng: Rng, n: number) => Math.floor(rng() * n);
export const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, xs.length)];

/** Raw JSON text spliced into a serialized value (JSON.stringify cannot write 1e999 or deep nesting). */
export class Raw {
  constructor(readonly text: string) {}
}

export function toJson(v: unknown): string {
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
export class Dup {
  constructor(readonly entries: [string, unknown][]) {}
}

const deep = (depth: number, open: string, close: string, inner = "") =>
  new Raw(open.repeat(depth) + inner + close.repeat(depth));

/** Values that break parsers: huge, negative, fractional, wrong types, deep nesting. */
export function weird(rng: Rng): unknown {
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

export function mutateValue(rng: Rng, v: unknown): unknown {
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
export function byteNoise(rng: Rng, bytes: Uint8Array, from: number, to: number): Uint8Array {
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
