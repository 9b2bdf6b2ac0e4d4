/**
 * `deno task bench`: speed on the adapter this machine has. For each model: prefill tokens/s, decode
 * tokens/s and ms/token with one step in flight (window 1) and with the automatic window.
 * Prints a table and writes the figures as JSON (bench-results.json, or --out FILE) for comparison.
 * Each model runs in its own process, as `flexidepth run` would load it: the GPU set-up may depend on the
 * model (a small model's dispatches run inline on a CPU software GPU). `--shape llama3-8b` benchmarks random
 * weights of that shape (BF16, FlexiDepth routers on layers 16–31) without a checkpoint. `--quant q8|q4`
 * quantizes the projections at load, as `flexidepth run --quant` does; `--kv-cache f16|f32` picks the KV cache
 * type (each row reports the one that ran; bench/kv_cache.ts compares the two at long context).
 *
 * The flags are read in bench_options.ts, the child processes run from bench_parent.ts, a row is measured in
 * bench_measure.ts (routing: bench_routing.ts), printed by bench_print.ts and described in bench_results.ts.
 */

import { benchOptions } from "./bench_options.ts";
import { runChildren } from "./bench_parent.ts";
import { measureModel } from "./bench_measure.ts";
import { printRow } from "./bench_print.ts";
import { type Row, writeResults } from "./bench_results.ts";

if (Deno.args.includes("--train")) {
  // Training speed: its own table (bench/train.ts).
  const { trainBenchMain } = await import("./train.ts");
  await trainBenchMain(Deno.args.filter((a) => a !== "--train"));
  Deno.exit(0);
}

const opts = await benchOptions(Deno.args);

if (!opts.flags.child) {
  // Parent: one child process per model, then one JSON file with every row.
  await runChildren(opts);
  Deno.exit(0);
}

const rows: Row[] = [];
let adapter = "";
for (const m of opts.models) {
  const measured = await measureModel(m, opts);
  adapter = measured.adapter;
  rows.push(measured.row);
  printRow(measured.row, opts.quant, measured.allocationTokens);
}
await writeResults(opts.flags.out ?? "bench-results.json", adapter, rows);
