// The step uniform and the per-row record every step-sized kernel reads (src/engine/forward.ts writes them).
// Step: the step's activation rows (n_rows) and the rows that need logits (n_out), written once per step —
// or by route_gate.wgsl for a routed layer's kept and skipped lists. Row: an activation row's sequence slot in
// the KV cache and its position there.

struct Step {
  n_rows: u32,
  n_out: u32,
  pad0: u32,
  pad1: u32,
}

struct Row {
  slot: u32,
  pos: u32,
}
