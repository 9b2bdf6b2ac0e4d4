// A sequence's generated tokens kept on the GPU by position (DMTD): history[slot · ctx + pos]. Two entries:
// RECORD = true  after sampling: the token sampled for output row j, tokens[j], is the one fed at the next
//                position of its row, rows[out_rows[j]]: history[slot · ctx + pos + 1] = tokens[j] (j < n_out).
// RECORD = false before a refill block: tokens[i] = history[slot · ctx + pos] for the block's rows (i < n_rows),
//                so the thinking layers run on the real tokens the host has not read back yet.
// Grid: (ceil(rows / WG)).

//! use lib/step.wgsl

struct HistoryParams {
  ctx: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
}

@group(0) @binding(0) var<uniform> params: HistoryParams;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> rows: array<Row>;
@group(0) @binding(3) var<storage, read> out_rows: array<u32>;
@group(0) @binding(4) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(5) var<storage, read_write> history: array<u32>;

override RECORD: bool = false;
const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (RECORD) {
    if (i >= step.n_out) { return; }
    let row = rows[out_rows[i]];
    if (row.pos + 1u < params.ctx) { history[row.slot * params.ctx + row.pos + 1u] = tokens[i]; }
    return;
  }
  if (i >= step.n_rows) { return; }
  let row = rows[i];
  tokens[i] = history[row.slot * params.ctx + row.pos];
}
