/** The lines `deno task bench` prints for one model's row. */

import type { QuantFormat } from "../src/model/quant.ts";
import type { Profile } from "./profile_decode.ts";
import type { Routing, Row } from "./bench_results.ts";
import { printDmtd } from "./dmtd.ts";

/** The model's name, its weights and KV cache, and prefill. */
function printHeading(row: Row, quant: QuantFormat | null): void {
  console.log(`\n${row.model}`);
  console.log(
    `  weights on the GPU: ${(row.weight_bytes / 2 ** 20).toFixed(1)} MiB${
      quant ? ` (projections ${quant})` : ""
    }; KV cache ${row.kv_cache}`,
  );
  if (row.prefill_tokens_per_s !== null) {
    console.log(`  prefill ${row.prefill_tokens} tokens: ${row.prefill_tokens_per_s.toFixed(1)} tokens/s`);
  } else console.log("  decode only (--decode-only)");
}

/** Decode by window, and by context length with its weight bandwidth against the probes'. */
function printDecode(row: Row): void {
  for (const d of row.decode) {
    console.log(
      `  decode window ${d.window.padEnd(4)} (depth ${String(d.depth_used).padStart(2)}): ` +
        `${d.tokens_per_s.toFixed(1).padStart(7)} tokens/s  ${
          d.ms_per_token.toFixed(2).padStart(7)
        } ms/token`,
    );
  }
  for (const c of row.context) {
    console.log(
      `  decode after ${String(c.prompt_tokens).padStart(4)} prompt tokens: ${
        c.tokens_per_s.toFixed(1).padStart(7)
      } tokens/s  ${c.ms_per_token.toFixed(2).padStart(7)} ms/token; weights ${
        c.weight_gb_per_s.toFixed(3)
      } GB/s = ${(100 * c.fraction_of_copy).toFixed(1)}% of copy bandwidth (${
        row.copy_gb_per_s.toFixed(2)
      } GB/s), ${(100 * c.fraction_of_read).toFixed(1)}% of ${row.read_probe} read bandwidth (${
        row.read_gb_per_s.toFixed(2)
      } GB/s)`,
    );
  }
}

function printRouting(r: Routing): void {
  console.log(
    `  routing: ${r.routed_ms_per_token.toFixed(2)} ms/token at ${
      r.mean_layers.toFixed(2)
    } of ${r.of_layers} layers; ` +
      `full depth ${r.full_depth_ms_per_token.toFixed(2)} ms/token`,
  );
  console.log(
    `  speed-up ${r.measured_speedup.toFixed(3)}× measured, ${
      r.ideal_speedup.toFixed(3)
    }× ideal from weight bytes ` +
      `(${(r.bytes_per_token_routed / 2 ** 20).toFixed(3)} vs ${
        (r.bytes_per_token_full / 2 ** 20).toFixed(3)
      } ` +
      `MiB/token): measured ÷ ideal = ${r.measured_over_ideal.toFixed(2)}`,
  );
}

/** A decode profile's total and its 24 costliest kernels. */
function printProfile(p: Profile): void {
  console.log(
    `  profile${p.full_depth ? " (full depth)" : ""}, ${p.steps} steps at window 1: GPU ${
      p.gpu_ms_per_step.toFixed(3)
    } ms/step of ${p.wall_ms_per_step.toFixed(3)} ms wall (every dispatch timed on its own)`,
  );
  for (const k of p.kernels.slice(0, 24)) {
    console.log(
      `    ${k.kernel.padEnd(48)} ${k.calls_per_step.toFixed(1).padStart(6)} calls ${
        k.ms_per_step.toFixed(3).padStart(8)
      } ms/step`,
    );
  }
}

/** Prints a row (`allocationTokens`: the length of the decode its allocations were counted over). */
export function printRow(row: Row, quant: QuantFormat | null, allocationTokens: number): void {
  printHeading(row, quant);
  printDecode(row);
  const a = row.allocations_500_tokens;
  if (a) {
    console.log(
      `  GPU objects created during ${allocationTokens} decode tokens: ${a.buffers} buffers (${a.buffer_bytes} B), ` +
        `${a.textures} textures, ${a.bind_groups} bind groups`,
    );
  }
  if (row.routing) printRouting(row.routing);
  if (row.dmtd) printDmtd(row.dmtd);
  for (const p of row.profile ?? []) printProfile(p);
}
