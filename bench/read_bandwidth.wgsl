// Read bandwidth probe for `deno task bench`: every invocation reads ITEMS vec4<u32>, strided by the whole
// grid (coalesced), and folds them so the loads cannot be dropped. The ceiling a decode GEMV can approach.
override WG: u32 = 256u;
override ITEMS: u32 = 8u;

@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> sink: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let total = n.x * WG;
  var acc = vec4<u32>(0u);
  for (var i = 0u; i < ITEMS; i++) {
    acc ^= src[g.x + i * total];
  }
  if (acc.x == 0x9e3779b9u) {
    sink[0] = acc.y;
  }
}
