/** The CLI as a user runs it, for tests: `main.ts` in a subprocess with stdin piped. */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Starts `flexidepth ARGS` with `stdin` written (or an empty stdin) and progress bars off. */
export function spawnCli(args: string[], stdin?: string): Deno.ChildProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { FLEXIDEPTH_NO_PROGRESS: "1" },
  }).spawn();
  const w = child.stdin.getWriter();
  (async () => {
    if (stdin !== undefined) await w.write(new TextEncoder().encode(stdin));
    await w.close();
  })().catch(() => {});
  return child;
}

/** Runs `flexidepth ARGS` to the end. */
export async function runCli(args: string[], stdin?: string): Promise<CliResult> {
  const out = await spawnCli(args, stdin).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A user error: exactly one line on stderr, `error: …` matching `pattern`, no stack trace, the exit code. */
export function assertOneLineError(
  r: CliResult,
  code: number | "non-zero",
  pattern: RegExp,
  label = "",
): void {
  if (code === "non-zero") ok(r.code !== 0, `${label}: exit code ${r.code}`);
  else assertEquals(r.code, code, `${label}: exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trim().split("\n");
  assertEquals(lines.length, 1, `${label}: one line on stderr, got:\n${r.stderr}`);
  ok(lines[0].startsWith("error: "), `${label}: ${lines[0]}`);
  ok(pattern.test(lines[0]), `${label}: ${lines[0]} should match ${pattern}`);
  ok(!/\bat .*\.ts:\d+/.test(r.stderr) && !/\n\s+at /.test(r.stderr), `${label}: stack trace in ${r.stderr}`);
}
