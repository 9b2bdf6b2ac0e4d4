/**
 * Adapter and device: requested with the adapter's own maximum limits and with `shader-f16` and
 * `subgroups` when offered (the fast kernel family), or with no features (the plain family).
 */

import { GpuError } from "../errors.ts";

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
}

export interface GpuOptions {
  /** "auto" requests shader-f16 and subgroups when offered; "none" requests no optional feature. */
  features?: FeatureMode;
  /** Ask for timestamp-query (profiling). */
  profile?: boolean;
}

function adapterHint(): string {
  return "install a Vulkan driver (Debian: apt-get install mesa-vulkan-drivers) or run on a machine with a GPU";
}

/** Opens the GPU. Throws GpuError with the fix when there is no adapter. */
export async function openGpu(opts: GpuOptions = {}): Promise<GpuContext> {
  // lavapipe warns without it; harmless, so give it a private folder when unset.
  if (!Deno.env.get("XDG_RUNTIME_DIR")) {
    try {
      const dir = Deno.makeTempDirSync({ prefix: "flexidepth-xdg-" });
      Deno.env.set("XDG_RUNTIME_DIR", dir);
    } catch { /* not fatal */ }
  }
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

  const ctx: GpuContext = {
    device,
    adapterInfo: adapter.info,
    hasF16: device.features.has("shader-f16"),
    hasSubgroups: device.features.has("subgroups" as GPUFeatureName),
    hasTimestamps: device.features.has("timestamp-query"),
    limits: device.limits,
    lost: null,
  };
  device.lost.then((info) => {
    ctx.lost = { reason: String(info.reason), message: info.message };
  });
  return ctx;
}

/** One line describing the adapter, for logs and `info`. */
export function describeAdapter(ctx: GpuContext): string {
  const i = ctx.adapterInfo;
  const name = i.description || `${i.vendor} ${i.device}`.trim() || "unknown adapter";
  const feats = [ctx.hasF16 ? "shader-f16" : "", ctx.hasSubgroups ? "subgroups" : ""].filter(Boolean);
  return `${name}${feats.length ? ` [${feats.join(", ")}]` : " [plain kernels]"}`;
}
