/**
 * Adapter and device: requested with the adapter's own maximum limits and with `shader-f16` and
 * `subgroups` when offered (the fast kernel family), or with no features (the plain family).
 */

import { GpuError } from "../errors.ts";
import { formatBytes } from "../util/format.ts";

export type FeatureMode = "auto" | "none";

export interface GpuContext {
  device: GPUDevice;
  adapterInfo: GPUAdapterInfo;
  /** Kernels may use `enable f16;` and f16 arithmetic. */
  hasF16: boolean;
  /** Kernels may use subgroup builtins (size unknown until run: never assumed). */
  hasSubgroups: boolean;
  /** Timestamp queries are available (profiling). */
  hasTimestamps: boolean;
  limits: GPUSupportedLimits;
  /** Set when the device is lost; checked by long-running loops. */
  lost: { reason: string; message: string } | null;
  /** The first error no error scope caught (a failed dispatch, an allocation refused mid-run). */
  uncaptured: string | null;
}

export interface GpuOptions {
  /** "auto" requests shader-f16 and subgroups when offered; "none" requests no optional feature. */
  features?: FeatureMode;
  /** Ask for timestamp-query (profiling). */
  profile?: boolean;
  /**
   * The work will be many small dispatches (a small model): on Mesa's CPU rasteriser run them inline rather
   * than through its worker threads. See `preferInlineDispatch`.
   */
  smallDispatches?: boolean;
}

/**
 * Mesa's CPU rasteriser (llvmpipe / lavapipe) hands every dispatch to its worker threads: measured ~70 µs per
 * dispatch on 2 cores, ~40 µs when dispatches run inline on the queue thread (LP_NUM_THREADS=0). A model whose
 * matmuls are all small decodes faster inline (stories260K: 276 vs 188 tokens/s); one with large matrices needs
 * the workers (the demo model: 19 vs 9 tokens/s). Mesa reads the variable when the process creates its first
 * adapter, so this acts only then, and never overrides a value the user set. Other drivers ignore it.
 */
export function preferInlineDispatch(): void {
  if (Deno.env.get("LP_NUM_THREADS") !== undefined) return;
  try {
    Deno.env.set("LP_NUM_THREADS", "0");
  } catch { /* no env permission: keep the driver's default */ }
}

function adapterHint(): string {
  return "install a Vulkan driver (Debian: apt-get install mesa-vulkan-drivers) or run on a machine with a GPU";
}

/** Storage buffers one kernel binds at most (route_gate; the matmuls with their RoPE epilogue bind 10). */
export const STORAGE_BUFFERS_NEEDED = 11;

/** Throws GpuError when a device's limits are below what the kernels bind. */
export function checkKernelLimits(limits: Pick<GPUSupportedLimits, "maxStorageBuffersPerShaderStage">): void {
  const have = limits.maxStorageBuffersPerShaderStage;
  if (have < STORAGE_BUFFERS_NEEDED) {
    throw new GpuError(
      `the GPU adapter binds ${have} storage buffers per shader stage; flexidepth's kernels need ${STORAGE_BUFFERS_NEEDED}`,
      "update the GPU driver, or run on another adapter (`flexidepth info` shows its limits)",
    );
  }
}

/** Opens the GPU. Throws GpuError with the fix when there is no adapter, or one the kernels cannot use. */
export async function openGpu(opts: GpuOptions = {}): Promise<GpuContext> {
  // lavapipe warns without it; harmless, so give it a private folder when unset.
  if (!Deno.env.get("XDG_RUNTIME_DIR")) {
    try {
      const dir = Deno.makeTempDirSync({ prefix: "flexidepth-xdg-" });
      Deno.env.set("XDG_RUNTIME_DIR", dir);
    } catch { /* not fatal */ }
  }
  if (opts.smallDispatches) preferInlineDispatch();
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) throw new GpuError("WebGPU is not available in this Deno build", "use Deno 2 or newer");
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    throw new GpuError(`no GPU adapter: ${(e as Error).message}`, adapterHint());
  }
  if (!adapter) throw new GpuError("no GPU adapter found", adapterHint());

  const mode = opts.features ?? "auto";
  const wanted: GPUFeatureName[] = [];
  // Subgroups are requestable on lavapipe although not listed in adapter.features: try, then fall back.
  if (mode === "auto") {
    if (adapter.features.has("shader-f16")) wanted.push("shader-f16");
    wanted.push("subgroups" as GPUFeatureName);
  }
  if (opts.profile && adapter.features.has("timestamp-query")) wanted.push("timestamp-query");

  const requiredLimits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, number>)[key];
    if (typeof v === "number") requiredLimits[key] = v;
  }

  let device: GPUDevice | null = null;
  for (const features of [wanted, wanted.filter((f) => f !== "subgroups")]) {
    try {
      device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
      break;
    } catch { /* retry without subgroups */ }
  }
  if (!device) throw new GpuError("the GPU adapter refused to create a device", adapterHint());
  checkKernelLimits(device.limits);

  const ctx: GpuContext = {
    device,
    adapterInfo: adapter.info,
    hasF16: device.features.has("shader-f16"),
    hasSubgroups: device.features.has("subgroups" as GPUFeatureName),
    hasTimestamps: device.features.has("timestamp-query"),
    limits: device.limits,
    lost: null,
    uncaptured: null,
  };
  device.lost.then((info) => {
    ctx.lost = { reason: String(info.reason), message: info.message };
  });
  // WebGPU drops uncaptured errors silently; keep the first so the engine can fail with it.
  device.addEventListener("uncapturederror", (e) => {
    ctx.uncaptured ??= (e as GPUUncapturedErrorEvent).error.message;
  });
  return ctx;
}

/** The limits that decide whether a model fits, lowered where `cap` asks (tests, a smaller GPU). */
export interface FitLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/** A view of `ctx` whose `limits` are at most `cap`'s (it still reads `lost` and `uncaptured` live). */
export function withLimits(ctx: GpuContext, cap: Partial<FitLimits> = {}): GpuContext {
  if (cap.maxBufferSize === undefined && cap.maxStorageBufferBindingSize === undefined) return ctx;
  // A plain copy: GPUSupportedLimits' getters refuse any other `this`.
  const limits: Record<string, number> = {};
  for (const key in ctx.limits) {
    const v = (ctx.limits as unknown as Record<string, number>)[key];
    if (typeof v === "number") limits[key] = v;
  }
  limits.maxBufferSize = Math.min(limits.maxBufferSize, cap.maxBufferSize ?? Infinity);
  limits.maxStorageBufferBindingSize = Math.min(
    limits.maxStorageBufferBindingSize,
    cap.maxStorageBufferBindingSize ?? Infinity,
  );
  return Object.create(ctx, { limits: { value: limits } }) as GpuContext;
}

/** A WebGPU error message on one line (drivers' messages may span several). */
export function gpuMessage(err: { message: string }): string {
  return err.message.replace(/\s+/g, " ").trim();
}

/** "maxBufferSize 2.00 GiB, maxStorageBufferBindingSize 128.0 MiB": the limits a model must fit. */
export function describeLimits(limits: FitLimits): string {
  return `maxBufferSize ${formatBytes(limits.maxBufferSize)}, ` +
    `maxStorageBufferBindingSize ${formatBytes(limits.maxStorageBufferBindingSize)}`;
}

/** One line describing the adapter, for logs and `info`. */
export function describeAdapter(ctx: GpuContext): string {
  const i = ctx.adapterInfo;
  const name = i.description || `${i.vendor} ${i.device}`.trim() || "unknown adapter";
  const feats = [ctx.hasF16 ? "shader-f16" : "", ctx.hasSubgroups ? "subgroups" : ""].filter(Boolean);
  return `${name}${feats.length ? ` [${feats.join(", ")}]` : " [plain kernels]"}`;
}

/**
 * Whether WGSL can read storage textures (`texture_storage_2d<…, read>`), as the texture matmul kernels do
 * (language feature readonly_and_readwrite_storage_textures).
 */
export function canReadStorageTextures(): boolean {
  // Not in Deno's GPU typings yet, though Deno's WebGPU has it.
  const features =
    (navigator.gpu as GPU & { wgslLanguageFeatures?: ReadonlySet<string> }).wgslLanguageFeatures;
  return features?.has("readonly_and_readwrite_storage_textures") ?? false;
}
