/**
 * Inputs per sample: paragraphs (bundled, or a user file) and seeded integer lists.
 * Sample i's input depends only on (seed, i) or the paragraph file — never on -n or on run order — so an
 * interrupted run resumes with the same inputs.
 */

import bundled from "../../prompts/paragraphs.json" with { type: "json" };
import { mulberry32 } from "../util/random.ts";
import { ExperimentError } from "./errors.ts";

export const BUNDLED_PARAGRAPHS: readonly string[] = bundled.paragraphs;

export interface ParagraphSource {
  /** "bundled" or the file as given. */
  source: string;
  paragraphs: string[];
}

/**
 * Paragraphs from a file: JSON Lines with a `text` (or XSum's `document`) string per line when the first
 * non-empty line is a JSON object, else one paragraph per non-empty line.
 */
export function parseParagraphs(content: string, name: string): string[] {
  const lines = content.split(/\r?\n/);
  const first = lines.find((l) => l.trim() !== "");
  if (first === undefined) {
    throw new ExperimentError(
      `${name} has no paragraphs`,
      'give one paragraph per line, or JSON Lines {"text": ...}',
    );
  }
  if (!first.trimStart().startsWith("{")) return lines.map((l) => l.trim()).filter((l) => l !== "");
  const out: string[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      throw new ExperimentError(
        `${name} line ${i + 1} is not valid JSON`,
        'in a JSON Lines file every line must be an object like {"text": "..."}',
      );
    }
    const rec = obj as Record<string, unknown> | null;
    const text = rec?.text ?? rec?.document;
    if (typeof text !== "string" || text.trim() === "") {
      throw new ExperimentError(
        `${name} line ${i + 1} has no "text" (or "document") string`,
        'give each line as {"text": "the paragraph"}',
      );
    }
    out.push(text.trim());
  });
  return out;
}

export async function loadParagraphs(file: string | undefined): Promise<ParagraphSource> {
  if (file === undefined) return { source: "bundled", paragraphs: [...BUNDLED_PARAGRAPHS] };
  let content: string;
  try {
    content = await Deno.readTextFile(file);
  } catch (e) {
    throw new ExperimentError(
      `cannot read --paragraphs ${file}: ${(e as Error).message}`,
      'give a text file with one paragraph per line, or JSON Lines {"text": ...}',
    );
  }
  return { source: file, paragraphs: parseParagraphs(content, file) };
}

/** Mixes the run seed and a sample index into one 32-bit generator seed. */
function sampleSeed(seed: number, sample: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x5bd1e995, 0x9e3779b1) >>> 0;
  h = (h ^ Math.imul(sample + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}

export const LIST_MIN_LENGTH = 5;
export const LIST_MAX_LENGTH = 10;
export const LIST_MIN_VALUE = 10;
export const LIST_MAX_VALUE = 99;

/** Sample `sample`'s list: 5–10 integers in [10, 99], a function of (seed, sample) only. */
export function integerList(seed: number, sample: number): number[] {
  const rand = mulberry32(sampleSeed(seed, sample));
  const len = LIST_MIN_LENGTH + Math.floor(rand() * (LIST_MAX_LENGTH - LIST_MIN_LENGTH + 1));
  const span = LIST_MAX_VALUE - LIST_MIN_VALUE + 1;
  return Array.from({ length: len }, () => LIST_MIN_VALUE + Math.floor(rand() * span));
}

/** SHA-256 of the paragraph list, to tell whether a resumed run uses the same inputs. */
export async function paragraphsDigest(paragraphs: string[]): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(paragraphs));
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...hash].map((b) => b.toString(16).padStart(2, "0")).join("");
}
