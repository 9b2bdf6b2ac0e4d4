/**
 * The bandwidth figures that `deno task bench` compares decode against: a buffer-to-buffer copy and a compute
 * kernel streaming the weights' storage (a buffer, or texture rows on software GPUs), each timed as the
 * difference between 3·reps and reps operations, best of `repeat`.
 */

/** The fastest of `repeat` runs, by the given time. */
export async function fastestOf<T>(
  repeat: number,
  run: () => Promise<T>,
  time: (r: T) => number,
): Promise<T> {
  let top: T | undefined;
  for (let i = 0; i < repeat; i++) {
    const r = await run();
    if (top === undefined || time(r) < time(top)) top = r;
  }
  return top!;
}

/**
 * Copy bandwidth of the device: buffer-to-buffer copies in one submit. Counts the bytes read plus the bytes
 * written, the traffic a memory system sustains; decode reads weights only, so its effective bandwidth is
 * compared against this figure. Timed as the difference between 3·reps and reps copies (best of `repeat`
 * each), which cancels the fixed cost of a submit and its wait (≥ 11 ms in Deno, longer than the copies
 * themselves on a fast GPU). On a software GPU the probes move 128 MiB, well past a CPU's last-level cache
 * (32 MiB here: a 32 MiB texture read "ran" at 27 GB/s), and write their sources first (see `noise`).
 */
export async function copyBandwidth(device: GPUDevice, software: boolean, repeat: number): Promise<number> {
  const size = software ? 128 << 20 : 256 << 20;
  const reps = software ? 4 : 40;
  const usage = GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const a = device.createBuffer({ size, usage }), b = device.createBuffer({ size, usage });
  fill(device, a);
  fill(device, b);
  const perSecond = await repsPerSecond(device, reps, repeat, (enc, n) => {
    for (let i = 0; i < n; i++) enc.copyBufferToBuffer(i % 2 ? b : a, 0, i % 2 ? a : b, 0, size);
  });
  a.destroy();
  b.destroy();
  return 2 * size * perSecond / 1e9;
}

/** Pseudo-random bytes (never-written memory can read as one shared zero page: a cache, not memory). */
function noise(bytes: number): Uint8Array<ArrayBuffer> {
  const words = new Uint32Array(bytes / 4);
  for (let i = 0, h = 0x9e3779b9; i < words.length; i++) {
    words[i] = h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) + i;
  }
  return new Uint8Array(words.buffer);
}

/** Writes noise over the whole buffer, 16 MiB at a time. */
function fill(device: GPUDevice, buffer: GPUBuffer): void {
  const chunk = 16 << 20, data = noise(Math.min(chunk, buffer.size));
  for (let o = 0; o < buffer.size; o += chunk) {
    device.queue.writeBuffer(buffer, o, data, 0, Math.min(chunk, buffer.size - o));
  }
}

/**
 * Operations per second of `record` (n operations into one encoder, one submit and wait): the difference
 * between 3·reps and reps, best of `repeat` each, cancelling the fixed cost of a submit and its wait. If noise
 * makes the difference meaningless, the plain (pessimistic) figure of 3·reps.
 */
async function repsPerSecond(
  device: GPUDevice,
  reps: number,
  repeat: number,
  record: (enc: GPUCommandEncoder, n: number) => void,
): Promise<number> {
  const run = async (n: number) => {
    const enc = device.createCommandEncoder();
    record(enc, n);
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  await run(1);
  const timeOf = (n: number) =>
    fastestOf(repeat, async () => {
      const t0 = performance.now();
      await run(n);
      return performance.now() - t0;
    }, (ms) => ms);
  const t1 = await timeOf(reps), t3 = await timeOf(3 * reps);
  return t3 > t1 ? (2 * reps) / ((t3 - t1) / 1000) : (3 * reps) / (t3 / 1000);
}

/**
 * Read bandwidth of the device from where the engine keeps the weights: a compute kernel streaming a buffer
 * (bench/read_bandwidth.wgsl) or walking texture rows (bench/read_bandwidth_tex.wgsl) — the ceiling a decode
 * GEMV can approach (a WebGPU buffer copy may run well below it). Timed like copyBandwidth: 3·reps against
 * reps dispatches.
 */
export function readBandwidth(
  device: GPUDevice,
  software: boolean,
  storage: "buffer" | "texture",
  repeat: number,
): Promise<number> {
  return storage === "texture"
    ? textureReadBandwidth(device, software, repeat)
    : bufferReadBandwidth(device, software, repeat);
}

async function textureReadBandwidth(device: GPUDevice, software: boolean, repeat: number): Promise<number> {
  const WG = 8, WIDTH = Math.min(4096, device.limits.maxTextureDimension2D);
  const size = software ? 128 << 20 : 512 << 20;
  const height = Math.min(size / 16 / WIDTH, device.limits.maxTextureDimension2D);
  const src = device.createTexture({
    size: [WIDTH, height],
    format: "rgba32uint",
    usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
  });
  // Written first: untouched memory may map to one shared zero page, and reading it measures a cache.
  const rowsPerWrite = Math.max(1, Math.floor((16 << 20) / (WIDTH * 16)));
  const data = noise(WIDTH * Math.min(rowsPerWrite, height) * 16);
  for (let y = 0; y < height; y += rowsPerWrite) {
    const rows = Math.min(rowsPerWrite, height - y);
    device.queue.writeTexture({ texture: src, origin: [0, y] }, data, { bytesPerRow: WIDTH * 16 }, [
      WIDTH,
      rows,
    ]);
  }
  const perSecond = await kernelRepsPerSecond(device, "read_bandwidth_tex.wgsl", { WG, WIDTH }, {
    source: src.createView(),
    groups: Math.ceil(height / WG),
    reps: software ? 4 : 40,
    repeat,
  });
  src.destroy();
  return WIDTH * height * 16 * perSecond / 1e9;
}

async function bufferReadBandwidth(device: GPUDevice, software: boolean, repeat: number): Promise<number> {
  const WG = 256, ITEMS = 8;
  const size = software ? 128 << 20 : 512 << 20;
  const src = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  fill(device, src);
  const perSecond = await kernelRepsPerSecond(device, "read_bandwidth.wgsl", { WG, ITEMS }, {
    source: { buffer: src },
    groups: size / 16 / ITEMS / WG,
    reps: software ? 4 : 40,
    repeat,
  });
  src.destroy();
  return size * perSecond / 1e9;
}

/**
 * Passes per second of a read kernel of this folder (binding 0 the source it streams, 1 a 16-byte sink that
 * keeps its loads alive), one pass of `groups` workgroups each: repsPerSecond over `reps`.
 */
async function kernelRepsPerSecond(
  device: GPUDevice,
  file: string,
  constants: Record<string, number>,
  run: { source: GPUBindingResource; groups: number; reps: number; repeat: number },
): Promise<number> {
  const sink = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
  const code = await Deno.readTextFile(new URL(`./${file}`, import.meta.url));
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module: device.createShaderModule({ code }), entryPoint: "main", constants },
  });
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: run.source }, { binding: 1, resource: { buffer: sink } }],
  });
  const perSecond = await repsPerSecond(device, run.reps, run.repeat, (enc, n) => {
    for (let i = 0; i < n; i++) {
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(run.groups);
      pass.end();
    }
  });
  sink.destroy();
  return perSecond;
}
