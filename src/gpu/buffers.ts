/**
 * GPU buffers and textures for activations and parameters: storage, uniform and "windowed" buffers, row
 * textures, the uniform struct builder, and slow readbacks for tests and diagnostics.
 */

/**
 * "windowed": a storage buffer that can also be bound as a uniform of its first UNIFORM_WINDOW bytes (it is at
 * least that large): the texture GEMVs read x and norm weights that way on software GPUs (gemv_tex.wgsl for one
 * row, gemv_tex_rows.wgsl for 2 to 8).
 */
export type BufferUse = "storage" | "uniform" | "windowed";

/** Bytes of a windowed buffer's uniform view (the maxUniformBufferBindingSize every adapter offers). */
export const UNIFORM_WINDOW = 65536;

function usageOf(use: BufferUse): number {
  const rw = GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  if (use === "uniform") return GPUBufferUsage.UNIFORM | rw;
  return GPUBufferUsage.STORAGE | (use === "windowed" ? GPUBufferUsage.UNIFORM : 0) | rw;
}

function sizeFor(bytes: number, use: BufferUse): number {
  return Math.max(use === "windowed" ? UNIFORM_WINDOW : 16, Math.ceil(bytes / 16) * 16);
}

/** A GPU buffer initialised from data (size rounded up to 16 bytes, or to the window). */
export function bufferFrom(
  device: GPUDevice,
  label: string,
  data: ArrayBufferView,
  use: BufferUse = "storage",
): GPUBuffer {
  const buffer = device.createBuffer({ label, size: sizeFor(data.byteLength, use), usage: usageOf(use) });
  device.queue.writeBuffer(buffer, 0, data as ArrayBufferView<ArrayBuffer>);
  return buffer;
}

/** An empty storage buffer of at least `bytes` bytes (windowed: see BufferUse). */
export function storageBuffer(
  device: GPUDevice,
  label: string,
  bytes: number,
  use: "storage" | "windowed" = "storage",
): GPUBuffer {
  return device.createBuffer({ label, size: sizeFor(bytes, use), usage: usageOf(use) });
}

/** Whether `b` can back a uniform window (see BufferUse). */
export function isWindowed(b: GPUBuffer): boolean {
  return (b.usage & GPUBufferUsage.UNIFORM) !== 0 && (b.usage & GPUBufferUsage.STORAGE) !== 0 &&
    b.size >= UNIFORM_WINDOW;
}

/**
 * `rows` activation rows of `n` floats as an rgba32float texture, a row of ceil(n / 4) texels each (zero past
 * n): rmsnorm.wgsl writes one, and gemv_tex.wgsl (row 0) and gemv_tex_rows.wgsl read their x there on software
 * GPUs (a texel load beats a uniform gather).
 */
export function rowTexture(device: GPUDevice, label: string, n: number, rows = 1): GPUTexture {
  return device.createTexture({
    label,
    size: [Math.max(1, Math.ceil(n / 4)), rows],
    format: "rgba32float",
    usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_SRC | GPUTextureUsage.COPY_DST,
  });
}

const unusedTextures = new WeakMap<GPUDevice, Map<GPUTextureFormat, GPUTextureView>>();

/** A one-texel storage texture of `format`, for a kernel's texture binding that a dispatch does not use. */
function unusedTexture(device: GPUDevice, format: GPUTextureFormat): GPUTextureView {
  let views = unusedTextures.get(device);
  if (!views) unusedTextures.set(device, views = new Map());
  let view = views.get(format);
  if (!view) {
    const usage = GPUTextureUsage.STORAGE_BINDING;
    view = device.createTexture({ label: `unused_${format}`, size: [1, 1], format, usage }).createView();
    views.set(format, view);
  }
  return view;
}

/** A one-texel row texture (rgba32float) for kernels whose row-texture binding a dispatch does not use. */
export function unusedRowTexture(device: GPUDevice): GPUTextureView {
  return unusedTexture(device, "rgba32float");
}

/** A one-texel rgba32uint texture for kernels whose quantized-row binding a dispatch does not use. */
export function unusedQuantizedRow(device: GPUDevice): GPUTextureView {
  return unusedTexture(device, "rgba32uint");
}

/** Reads a buffer back to the host (slow: tests, diagnostics and one-off reads only). */
export async function readBuffer(
  device: GPUDevice,
  src: GPUBuffer,
  bytes = src.size,
  offset = 0,
): Promise<ArrayBuffer> {
  const size = Math.ceil(bytes / 4) * 4;
  const staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(src, offset, staging, 0, size);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0, bytes);
  staging.unmap();
  staging.destroy();
  return out;
}

/** Reads a row texture (rowTexture) back as its floats, 4 per texel, row after row (tests and diagnostics). */
export async function readRowTexture(device: GPUDevice, texture: GPUTexture): Promise<Float32Array> {
  const bytesPerRow = Math.ceil(texture.width * 16 / 256) * 256, rows = texture.height;
  const staging = device.createBuffer({
    size: bytesPerRow * rows,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = device.createCommandEncoder();
  enc.copyTextureToBuffer({ texture }, { buffer: staging, bytesPerRow }, [texture.width, rows]);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const mapped = staging.getMappedRange(), out = new Float32Array(texture.width * 4 * rows);
  for (let r = 0; r < rows; r++) {
    out.set(new Float32Array(mapped, r * bytesPerRow, texture.width * 4), r * texture.width * 4);
  }
  staging.unmap();
  staging.destroy();
  return out;
}

/** Uniform struct builder: u32 / f32 fields in declaration order (each 4 bytes, 16-byte padded). */
export function uniformData(fields: Array<["u32" | "f32" | "i32", number]>): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const view = new DataView(buf);
  fields.forEach(([t, v], i) => {
    if (t === "f32") view.setFloat32(i * 4, v, true);
    else if (t === "i32") view.setInt32(i * 4, v, true);
    else view.setUint32(i * 4, v, true);
  });
  return buf;
}
