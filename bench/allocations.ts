/** GPU objects created while some work runs: a per-step allocation shows up here. */

/** Counts the GPU objects `device` creates while `work` runs. */
export async function countAllocations(device: GPUDevice, work: () => Promise<unknown>) {
  const counts = { buffers: 0, buffer_bytes: 0, textures: 0, bind_groups: 0 };
  const orig = {
    buffer: device.createBuffer,
    texture: device.createTexture,
    bindGroup: device.createBindGroup,
  };
  device.createBuffer = (d) => {
    counts.buffers++;
    counts.buffer_bytes += d.size;
    return orig.buffer.call(device, d);
  };
  device.createTexture = (d) => {
    counts.textures++;
    return orig.texture.call(device, d);
  };
  device.createBindGroup = (d) => {
    counts.bind_groups++;
    return orig.bindGroup.call(device, d);
  };
  try {
    await work();
  } finally {
    device.createBuffer = orig.buffer;
    device.createTexture = orig.texture;
    device.createBindGroup = orig.bindGroup;
  }
  return counts;
}
