/**
 * Checking math answers: integers are parsed from the generated text (thousands separators allowed).
 * repeat  — correct when the list repeated 5 times appears as a contiguous run of the parsed integers;
 * sum     — correct when the last integer in the answer is the sum;
 * product — correct when the last integer in the answer is the product (exact, as a bigint).
 */

export const REPEAT_TIMES = 5;

/** Integers in order of appearance; "1,234,567" (comma thousands separators, 3-digit groups) is one number. */
export function parseIntegers(text: string): bigint[] {
  const out: bigint[] = [];
  for (const m of text.matchAll(/-?\d{1,3}(?:,\d{3})+(?!\d)|-?\d+/g)) {
    out.push(BigInt(m[0].replaceAll(",", "")));
  }
  return out;
}

export interface Expected {
  /** The expected answer, as a string (a bigint product does not fit a JSON number). */
  expected: string;
  check: (text: string) => boolean;
}

export function expectedAnswer(task: string, list: number[]): Expected | null {
  switch (task) {
    case "repeat": {
      const want = Array.from({ length: REPEAT_TIMES }, () => list).flat().map(BigInt);
      return {
        expected: want.join(", "),
        check: (text) => containsRun(parseIntegers(text), want),
      };
    }
    case "sum": {
      const want = list.reduce((a, b) => a + BigInt(b), 0n);
      return { expected: String(want), check: (text) => parseIntegers(text).at(-1) === want };
    }
    case "product": {
      const want = list.reduce((a, b) => a * BigInt(b), 1n);
      return { expected: String(want), check: (text) => parseIntegers(text).at(-1) === want };
    }
    default:
      return null;
  }
}

function containsRun(hay: bigint[], needle: bigint[]): boolean {
  outer: for (let s = 0; s + needle.length <= hay.length; s++) {
    for (let k = 0; k < needle.length; k++) if (hay[s + k] !== needle[k]) continue outer;
    return true;
  }
  return false;
}
