/**
 * What `deno task bench` reports: one row of figures per model, and the results file (bench-results.json or
 * --out) that holds them with the date and the adapter.
 */

import type { KvDtype } from "../src/gpu/profile.ts";
import type { DmtdRow } from "./dmtd.ts";
import type { Profile } from "./profile_decode.ts";

/** Decode with routing against decode at full depth, and the speed-up the weight bytes predict. */
export interface Routing {
  mean_layers: number;
  of_layers: number;
  routed_ms_per_token: number;
  full_depth_ms_per_token: number;
  measured_speedup: number;
  ideal_speedup: number;
  measured_over_ideal: number;
  bytes_per_token_routed: number;
  bytes_per_token_full: number;
}

export interface Row {
  model: string;
  /** Projections quantized at load ("none", "q8", "q4"). */
  quant: string;
  /** The KV cache's element type that ran (`--kv-cache`, else the backend profile's). */
  kv_cache: KvDtype;
  /** Bytes of weights on the GPU. */
  weight_bytes: number;
  routing?: Routing;
  /** DMTD models: decode at full depth and at each cycle τ. */
  dmtd?: DmtdRow;
  /** --profile: GPU time per decode step by kernel and matrix (layers folded together), with routing and not. */
  profile?: Profile[];
  /** Buffer-to-buffer copy on the same device: (bytes read + bytes written) / s. */
  copy_gb_per_s: number;
  /** A compute kernel streaming the weights' storage (read_probe: a buffer or texture rows): bytes read / s. */
  read_gb_per_s: number;
  read_probe: "buffer" | "texture";
  /**
   * Decode only (--decode-only): no prefill figures, no `decode` rows by window (its one context row, after a
   * one-token prompt, is the automatic window's decode), no allocation count.
   */
  decode_only: boolean;
  prefill_tokens: number;
  prefill_tokens_per_s: number | null;
  /**
   * Decode after a prompt of 128 and of 2048 tokens (or the most the model's context allows); decode only: 1.
   */
  context: {
    prompt_tokens: number;
    tokens_per_s: number;
    ms_per_token: number;
    weight_bytes_per_token: number;
    weight_gb_per_s: number;
    fraction_of_copy: number;
    fraction_of_read: number;
  }[];
  /** GPU objects created during a warmed-up 500-token decode (a per-token allocation shows up here). */
  allocations_500_tokens: {
    buffers: number;
    buffer_bytes: number;
    textures: number;
    bind_groups: number;
  } | null;
  decode: {
    window: string;
    depth_used: number;
    tokens: number;
    tokens_per_s: number;
    ms_per_token: number;
    readback_wait_ms: number;
  }[];
}

/** Writes the results file: `{date, adapter, rows}`. */
export async function writeResults(out: string, adapter: string, rows: unknown[]): Promise<void> {
  await Deno.writeTextFile(
    out,
    JSON.stringify({ date: new Date().toISOString(), adapter, rows }, null, 2) + "\n",
  );
}
