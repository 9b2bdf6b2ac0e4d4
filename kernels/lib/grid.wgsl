// Workgroup grids wider than 65535 (WebGPU's limit per dimension): the host splits a count of workgroups over
// x and y (src/ops/grid.ts `grid2d`), and a kernel takes its flat index here. No requirement on the kernel.

fn flat_group(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}
