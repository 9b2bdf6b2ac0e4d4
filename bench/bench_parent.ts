/**
 * `deno task bench` as the parent process: each model runs in a child process of its own (bench.ts
 * --child, with the flags that shape a row), as `flexidepth run` would load it; then one results file holds
 * every row.
 */

import type { BenchFlags, BenchModel, BenchOptions } from "./bench_options.ts";
import { writeResults } from "./bench_results.ts";

const BENCH = new URL("./bench.ts", import.meta.url).pathname;

/** The child's command line for one model, writing its results to `out`. */
function childArgs(flags: BenchFlags, m: BenchModel, out: string): string[] {
  const args = ["run", "--allow-all", BENCH, "--child", "--model", m.dir, "--name", m.name, "--out", out];
  for (const k of ["tokens", "repeat", "storage", "quant", "kv-cache"] as const) {
    if (flags[k]) args.push(`--${k}`, flags[k]!);
  }
  if (flags["plain-kernels"]) args.push("--plain-kernels");
  if (flags.profile) args.push("--profile");
  if (m.decodeOnly) args.push("--decode-only");
  return args;
}

/** Runs one child per model (exits 1 if one fails), then writes every row to --out and says so. */
export async function runChildren(opts: BenchOptions): Promise<void> {
  const rowsAll: unknown[] = [];
  let adapterAll = "";
  for (const m of opts.models) {
    const tmp = await Deno.makeTempFile({ suffix: ".json" });
    const { success } = await new Deno.Command(Deno.execPath(), {
      args: childArgs(opts.flags, m, tmp),
      stdout: "inherit",
      stderr: "inherit",
    })
      .output();
    if (!success) Deno.exit(1);
    const r = JSON.parse(await Deno.readTextFile(tmp));
    await Deno.remove(tmp);
    adapterAll = r.adapter;
    for (const row of r.rows) rowsAll.push({ ...row, model: m.name });
  }
  const out = opts.flags.out ?? "bench-results.json";
  await writeResults(out, adapterAll, rowsAll);
  console.log(`\nwrote ${out}`);
}
