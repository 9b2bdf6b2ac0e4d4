/**
 * A step that fails on the GPU becomes one GpuError that says what happened and what to do: the device lost
 * (a driver reset, out of memory, closed), an error no error scope caught, or a failed readback.
 */

import { GpuError } from "../errors.ts";
import { type GpuContext, gpuMessage } from "../gpu/device.ts";

/**
 * Races waits against the device being lost (a lost device may leave a readback pending forever). One
 * `device.lost` handler, registered once: racing each step against `device.lost` itself would pile up a
 * reaction per generated token on a promise that normally never settles.
 */
export class LostDeviceWatch {
  private readonly waiters = new Set<(v: null) => void>();

  constructor(private readonly gpu: GpuContext) {
    gpu.device.lost.then(() => {
      for (const release of this.waiters) release(null);
      this.waiters.clear();
    });
  }

  /** `p`'s value, or null once the device is lost (whichever comes first). */
  async race<T>(p: Promise<T>): Promise<T | null> {
    let release: (v: null) => void = () => {};
    const lost = new Promise<null>((resolve) => {
      release = resolve;
      this.waiters.add(resolve);
    });
    if (this.gpu.lost) release(null);
    try {
      return await Promise.race([p, lost]);
    } finally {
      this.waiters.delete(release);
    }
  }
}

/** The one-line error for a failed step of `model` (a description of its weights, cache and limits). */
export async function stepFault(gpu: GpuContext, model: string, cause: unknown): Promise<GpuError> {
  if (!gpu.lost && !gpu.uncaptured) {
    // The readback may fail a moment before the device reports itself lost.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([gpu.device.lost, new Promise((resolve) => timer = setTimeout(resolve, 100))]);
    clearTimeout(timer);
  }
  const lost = gpu.lost;
  if (lost) {
    return new GpuError(
      `the GPU device was lost (${lost.reason}${
        lost.message ? `: ${gpuMessage(lost)}` : ""
      }) while running ${model}`,
      lost.reason === "destroyed"
        ? "the device was closed while generating"
        : "the GPU driver reset it (a watchdog timeout, or out of memory): run again; if it recurs, lower --context or use a smaller model",
    );
  }
  if (gpu.uncaptured) {
    return new GpuError(
      `GPU error while running ${model}: ${gpuMessage({ message: gpu.uncaptured })}`,
      "lower --context or use a smaller model; if it persists, report it with `flexidepth info`",
    );
  }
  return new GpuError(
    `reading results back from the GPU failed while running ${model}: ${gpuMessage(cause as Error)}`,
    "run again; if it persists, report it with `flexidepth info`",
  );
}
