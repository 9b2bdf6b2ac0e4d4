// The bindings every matmul kernel declares alike: 1 step, 4 y (f32 [N, y_stride]), 5 row_scale (f32 [N]; any
// buffer when the row scale is off), 7 rows ({slot, pos} per activation row), 8 cos_sin ([ctx, head_dim / 2]),
// 9 k_cache, 10 v_cache (this layer's, [slots, ctx, kv_dim] in words: lib/kv_read.wgsl); 7-10 are read under
// ROPE only. Each kernel
// declares 0 params, 2 x, 3 w and 6 norm_w itself (their types differ), and any bindings of its own after 10.

//! use lib/step.wgsl

@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> row_scale: array<f32>;
@group(0) @binding(7) var<storage, read> rows: array<Row>;
@group(0) @binding(8) var<storage, read> cos_sin: array<vec2<f32>>;
@group(0) @binding(9) var<storage, read_write> k_cache: array<u32>;
@group(0) @binding(10) var<storage, read_write> v_cache: array<u32>;
