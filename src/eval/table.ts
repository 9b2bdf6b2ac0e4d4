/** The table printed at the end of a run: per task its primary score ± stderr in each mode, layers per token, retention. */

import type { Estimate } from "./metrics.ts";
import type { EvalResults } from "./results.ts";

export const fmtEstimate = (e: Estimate | undefined) =>
  e?.value === null || e?.value === undefined
    ? "—"
    : `${e.value.toFixed(4)}${e.stderr === null ? "" : ` ± ${e.stderr.toFixed(4)}`}`;

const f = (x: number | null | undefined, d: number) => (x === null || x === undefined ? "—" : x.toFixed(d));
export const pct = (
  x: number | null | undefined,
) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)}%`);

export function formatEvalTable(r: EvalResults): string {
  const modes = r.settings.modes;
  const head = ["task", "metric", "items", ...modes];
  const rows: string[][] = [];
  for (const t of r.tasks) {
    const items = String(Math.max(0, ...t.modes.map((m) => m.items)));
    rows.push([t.task, t.primary, items, ...t.modes.map((m) => fmtEstimate(m.metrics[t.primary]))]);
    rows.push(["", "layers/token", "", ...t.modes.map((m) => f(m.mean_layers, 2))]);
  }
  const retention = modes.map((
    m,
  ) => (m === "full"
    ? (modes.length > 1 ? "100.0%" : "—")
    : pct(r.retention.find((x) => x.mode === m)?.retention))
  );
  rows.push(["retention", "", "", ...retention]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)));
  const line = (cells: string[]) =>
    cells.map((x, c) => (c < 2 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join("  ");
  const notes = [
    `layers/token: mean layers per scored token (continuation tokens; generated tokens) of ${r.model.numLayers}.`,
    modes.includes("full")
      ? "retention: mean over tasks of each mode's score ÷ the full mode's score on the same task (the FlexiDepth paper's)."
      : "retention needs the full mode: add full to --modes.",
  ];
  return [line(head), ...rows.map(line), "", ...notes].join("\n");
}
