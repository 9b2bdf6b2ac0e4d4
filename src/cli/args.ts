/** Command-line parsing on Node's built-in `util.parseArgs` (JSR's std/cli is not reachable). */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "../errors.ts";

export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

/** Parses argv strictly: an unknown flag or a missing value is a UsageError (exit 2) naming it. */
export function parseFlags<O extends OptionSpec>(command: string, argv: string[], options: O) {
  const config = { args: argv, options, allowPositionals: true as const, strict: true as const };
  try {
    return parseArgs(config);
  } catch (e) {
    // Node appends advice about "--" to unknown-option messages: drop it, the hint says where to look.
    const msg = (e as Error).message.split("\n")[0].replace(/^.*?: /, "").replace(
      /\. To specify a positional.*$/,
      "",
    );
    throw new UsageError(`${command}: ${msg}`, `see 'flexidepth ${command} --help'`);
  }
}

/**
 * parseFlags for a command whose options have `help`: with -h/--help it prints `help` and returns null,
 * and the command returns 0 without doing anything else.
 */
export function parseCommandFlags<O extends OptionSpec & { help: { type: "boolean" } }>(
  command: string,
  argv: string[],
  options: O,
  help: string,
) {
  const parsed = parseFlags(command, argv, options);
  if ((parsed.values as { help?: boolean }).help) {
    console.log(help);
    return null;
  }
  return parsed;
}

/** A number flag within [min, max]; `name` is the flag as typed. */
export function numberFlag(
  value: string | undefined,
  name: string,
  fallback: number,
  { min = -Infinity, max = Infinity, integer = false } = {},
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    const range = `${integer ? "an integer" : "a number"}${min > -Infinity ? ` ≥ ${min}` : ""}${
      max < Infinity ? ` and ≤ ${max}` : ""
    }`;
    throw new UsageError(`${name} must be ${range}, got "${value}"`);
  }
  return n;
}

/** One of a fixed set of words. */
export function choiceFlag<T extends string>(
  value: string | undefined,
  name: string,
  choices: T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!choices.includes(value as T)) {
    throw new UsageError(`${name} must be one of ${choices.join(", ")}, got "${value}"`);
  }
  return value as T;
}
