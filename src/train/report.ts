/**
 * report.html of a training run: the loss curves (the optimised loss, L_lm, L_skip, validation), mean layers per
 * token over the steps and, for FlexiDepth, the fraction of tokens running each routed layer — one page, no
 * external requests.
 */

import type { StepRecord } from "./log.ts";
import { lineChart, type Series } from "../ui/line_chart.ts";
import { escapeHtml } from "../experiment/report.ts";

export const REPORT_FILE = "report.html";
const COLORS = ["#08306b", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d"];

export function renderTrainReport(
  title: string,
  settings: Record<string, unknown>,
  records: StepRecord[],
): string {
  const at = (f: (r: StepRecord) => number | null | undefined): Array<[number, number | null]> =>
    records.map((r) => [r.step + 1, f(r) ?? null]);
  const losses: Series[] = [
    { name: "loss", color: COLORS[0], points: at((r) => r.loss) },
    { name: "L_lm", color: COLORS[1], points: at((r) => r.lm_loss) },
    { name: "validation", color: COLORS[2], points: at((r) => r.val_loss).filter((p) => p[1] !== null) },
  ];
  const skip: Series[] = [{ name: "L_skip", color: COLORS[3], points: at((r) => r.skip_loss) }];
  const routed = records.find((r) => r.routed_fraction)?.routed_fraction?.length ?? 0;
  const perLayer: Series[] = Array.from({ length: routed }, (_, k) => ({
    name: `routed layer ${k + 1}`,
    color: COLORS[k % COLORS.length],
    points: at((r) => r.routed_fraction?.[k]),
  }));
  const charts = [
    lineChart(losses, { title: "Loss", xLabel: "step", yLabel: "loss" }),
    records.some((r) => r.skip_loss !== null)
      ? lineChart(skip, { title: "L_skip", xLabel: "step", yLabel: "L_skip" })
      : "",
    lineChart([{ name: "mean layers", color: COLORS[0], points: at((r) => r.mean_layers) }], {
      title: "Mean layers per token",
      xLabel: "step",
      yLabel: "layers",
    }),
    routed
      ? lineChart(perLayer, { title: "Tokens running each routed layer", xLabel: "step", yLabel: "fraction" })
      : "",
  ];
  const rows = Object.entries(settings).map(([k, v]) =>
    `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(JSON.stringify(v) ?? "—")}</td></tr>`
  );
  const last = records.at(-1);
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>` +
    `body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}td{padding:2px 10px}` +
    `figure{margin:1.5em 0}figcaption{font-weight:bold;margin-bottom:4px}</style></head><body>` +
    `<h1>${escapeHtml(title)}</h1>` +
    (last
      ? `<p>${last.step + 1} steps · loss ${last.loss.toFixed(4)} · ${
        last.mean_layers.toFixed(2)
      } layers per token · ` +
        `${last.tokens_per_s.toFixed(0)} tokens/s</p>`
      : "<p>No steps yet.</p>") +
    `${charts.join("")}<h2>Settings</h2><table>${rows.join("")}</table></body></html>\n`;
}
