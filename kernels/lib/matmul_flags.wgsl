// The behaviour toggles of the matmul kernels, bits of the kernel's `params.flags` (a MatmulParams). Runtime
// flags, not overrides: on llvmpipe every distinct pipeline of a module competes for a small cache of compiled
// variants (kernels/README.md).

//! use lib/matmul_params.wgsl

// Bit 0: y += result instead of y = result.
fn accumulate() -> bool {
  return (params.flags & 1u) != 0u;
}

// Bits 1-2: the row scale s(n): 0 none, 1 × row_scale[n], 2 × (1 − row_scale[n]).
fn scale_mode() -> u32 {
  return (params.flags >> 1u) & 3u;
}

// Bit 3: K % 4 == 0 (x rows start on 16-byte boundaries).
fn x_aligned() -> bool {
  return (params.flags & 8u) != 0u;
}

// Bit 4 NORM: x is read through RMSNorm.
fn has_norm() -> bool {
  return (params.flags & 16u) != 0u;
}

// Bit 5 SWIGLU: weight rows interleave gate and up; silu(gate) · up is stored.
fn swiglu() -> bool {
  return (params.flags & 32u) != 0u;
}

// Bit 6 ROPE: the attention projection, rotated into y and the KV cache (lib/matmul_rope.wgsl).
fn rope() -> bool {
  return (params.flags & 64u) != 0u;
}

// Bit 7 KV16: under ROPE, the KV cache holds f16 pairs (lib/kv_write.wgsl), not f32.
fn kv16() -> bool {
  return (params.flags & 128u) != 0u;
}
