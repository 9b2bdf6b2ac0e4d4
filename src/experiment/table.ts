/** The summary table printed at the end of a run (plain text, fixed-width columns). */

import type { ExperimentSummary } from "./stats.ts";

const f = (x: number | null, digits: number) => (x === null ? "—" : x.toFixed(digits));

export function formatTable(s: ExperimentSummary): string {
  const L = s.model.numLayers;
  const head = [
    "task",
    "samples",
    "tokens",
    "layers/token",
    "variance",
    `of ${L}`,
    "paper",
    `paper of ${s.paper_num_layers}`,
    "tokens/s",
    "accuracy",
  ];
  const rows = s.tasks.map((t) => [
    t.task,
    String(t.samples),
    String(t.tokens),
    f(t.mean_layers, 2),
    f(t.variance_layers, 3),
    f(t.mean_layers_fraction, 3),
    t.paper_mean_layers.toFixed(2),
    t.paper_fraction.toFixed(3),
    f(t.tokens_per_s, 1),
    t.accuracy ? `${t.accuracy.correct}/${t.accuracy.total}` : "—",
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) =>
    cells.map((x, c) => (c === 0 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join("  ");
  const routed = s.model.routingLayers.length;
  return [
    line(head),
    ...rows.map(line),
    "",
    `layers/token: mean layers per generated token on this model (${s.model.minLayers}..${L}, ${routed} routed); ` +
    `"of ${L}" is that as a fraction of its ${L} layers.`,
    `paper: FlexiDepth-Llama-3-8B-Instruct (16..${s.paper_num_layers}); compare the fractions, not the counts.`,
  ].join("\n");
}
