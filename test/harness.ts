/**
 * Shared test helpers: GPU devices for both kernel families, tolerant comparisons, a spy on GPU allocations.
 * "plain": a device requested without optional features (the portable kernels).
 * "fast": shader-f16 and subgroups when the adapter offers them (lavapipe does).
 */

import { type GpuContext, openGpu } from "../src/gpu/device.ts";

export type Family = "plain" | "fast";

const devices = new Map<Family, Promise<GpuContext>>();

/** One device per family, shared by all tests of a file. */
export function testGpu(family: Family): Promise<GpuContext> {
  let d = devices.get(family);
  if (!d) {
    d = openGpu({ features: family === "fast" ? "auto" : "none" });
    devices.set(family, d);
  }
  return d;
}

/** The families this machine can test (fast needs shader-f16 + subgroups). */
export async function families(): Promise<Family[]> {
  const fast = await testGpu("fast");
  return fast.hasF16 && fast.hasSubgroups ? ["plain", "fast"] : ["plain"];
}

export interface Tolerance {
  atol: number;
  rtol: number;
}

/** Max |a-e| / (atol + rtol*|e|) over all elements must be ≤ 1; the message names the worst index. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance,
  label = "",
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${label}: length ${actual.length} != expected ${expected.length}`);
  }
  let worst = 0;
  let at = -1;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (!Number.isFinite(a) && a !== e) {
      throw new Error(`${label}: non-finite value ${a} at ${i} (expected ${e})`);
    }
    const r = Math.abs(a - e) / (tol.atol + tol.rtol * Math.abs(e));
    if (r > worst) {
      worst = r;
      at = i;
    }
  }
  if (worst > 1) {
    throw new Error(
      `${label}: mismatch at ${at}: got ${actual[at]}, expected ${expected[at]} ` +
        `(${worst.toFixed(2)}× tolerance atol=${tol.atol} rtol=${tol.rtol})`,
    );
  }
}

/**
 * The GPU objects (buffers, textures, bind groups) `device` creates while `run` streams, `streaming(true)`
 * to `streaming(false)`: an engine allocates everything before its first token, so a test expects none.
 */
export async function objectsCreatedWhileStreaming(
  device: GPUDevice,
  run: (streaming: (on: boolean) => void) => Promise<void>,
): Promise<string[]> {
  const created: string[] = [];
  let streaming = false;
  const note = (kind: string, label?: string) => streaming && created.push(`${kind} ${label ?? ""}`);
  const orig = { buffer: device.createBuffer, texture: device.createTexture, group: device.createBindGroup };
  device.createBuffer = (d) => (note("buffer", d.label), orig.buffer.call(device, d));
  device.createTexture = (d) => (note("texture", d.label), orig.texture.call(device, d));
  device.createBindGroup = (d) => (note("bind group", d.label), orig.group.call(device, d));
  try {
    await run((on) => streaming = on);
  } finally {
    [device.createBuffer, device.createTexture, device.createBindGroup] = [
      orig.buffer,
      orig.texture,
      orig.group,
    ];
  }
  return created;
}
