// Texture read bandwidth probe for `deno task bench` (weights in textures, as on CPU software GPUs): every
// invocation walks one row of a read-only rgba32uint storage texture, as gemm_tex.wgsl walks its weight
// texels, and folds the texels so the loads cannot be dropped. The ceiling the texture matmul can approach.
requires readonly_and_readwrite_storage_textures;

override WG: u32 = 8u;
override WIDTH: u32 = 4096u;

@group(0) @binding(0) var src: texture_storage_2d<rgba32uint, read>;
@group(0) @binding(1) var<storage, read_write> sink: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  var acc = vec4<u32>(0u);
  for (var x = 0u; x < WIDTH; x += 4u) {
    acc ^= textureLoad(src, vec2<u32>(x, g.x));
    acc ^= textureLoad(src, vec2<u32>(x + 1u, g.x));
    acc ^= textureLoad(src, vec2<u32>(x + 2u, g.x));
    acc ^= textureLoad(src, vec2<u32>(x + 3u, g.x));
  }
  if (acc.x == 0x9e3779b9u) {
    sink[0] = acc.y;
  }
}
