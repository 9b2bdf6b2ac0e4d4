// What gather.wgsl and scatter.wgsl share: rows of `params.width` 32-bit words (f32 activations or u32 records
// alike, copied as bits) move between a dense block (row i) and the rows idx[i] of a larger array, for
// i < count.n_rows. Grid: (ceil(width / WG), max rows).

//! use lib/step.wgsl

struct RowCopyParams {
  width: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
}

@group(0) @binding(0) var<uniform> params: RowCopyParams;
@group(0) @binding(1) var<storage, read> count: Step;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read> src: array<u32>;
@group(0) @binding(4) var<storage, read_write> dst: array<u32>;

const WG: u32 = 64u;
