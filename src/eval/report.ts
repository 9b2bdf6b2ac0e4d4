/**
 * report.html: one self-contained page (inline CSS and SVG, no requests) with the scores of every task and
 * mode (± standard error), retention per mode, a bar chart of layers per scored token per task and mode, a
 * chart of each task's score against its layers (how much depth each point of score costs), and MMLU's
 * subjects in a fold.
 */

import { escapeHtml } from "../experiment/report.ts";
import type { EvalResults, TaskResult } from "./results.ts";
import { fmtEstimate, pct } from "./table.ts";

const MODE_COLORS = ["#08306b", "#2171b5", "#6baed6", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d"];
const color = (i: number) => MODE_COLORS[i % MODE_COLORS.length];
const f = (x: number | null | undefined, d: number) => (x === null || x === undefined ? "—" : x.toFixed(d));

function scoreTable(r: EvalResults): string {
  const modes = r.settings.modes;
  const rows = r.tasks.flatMap((t) =>
    t.metrics.map((metric, k) =>
      `<tr>${
        k === 0 ? `<td rowspan="${t.metrics.length}">${escapeHtml(t.task)}</td>` : ""
      }<td class="m">${metric}${metric === t.primary ? " ★" : ""}</td>` + t.modes.map((m) =>
        `<td>${fmtEstimate(m.metrics[metric])}</td>`
      ).join("") + `</tr>`
    )
  );
  const ret = modes.map((m) =>
    `<td><b>${
      m === "full"
        ? (modes.length > 1 ? "100.0%" : "—")
        : pct(r.retention.find((x) => x.mode === m)?.retention)
    }</b></td>`
  );
  return `<table><thead><tr><th>task</th><th class="m">metric</th>${
    modes.map((m) => `<th>${escapeHtml(m)}</th>`).join("")
  }</tr></thead>` +
    `<tbody>${rows.join("")}<tr class="total"><td colspan="2">retention</td>${
      ret.join("")
    }</tr></tbody></table>`;
}

function detailTable(r: EvalResults): string {
  const rows = r.tasks.flatMap((t) =>
    t.modes.map((m) =>
      `<tr><td>${escapeHtml(t.task)}</td><td>${escapeHtml(m.mode)}</td><td>${m.items}</td><td>${
        f(m.mean_layers, 2)
      }</td>` +
      `<td>${f(m.mean_layers_fraction, 3)}</td><td>${m.scored_tokens}</td><td>${
        f(m.scored_tokens_per_s, 1)
      }</td>` +
      `<td>${f(m.mean_shots, 2)}</td><td>${m.truncated_items}</td></tr>`
    )
  );
  return `<table><thead><tr><th>task</th><th>mode</th><th>items</th><th>layers / token</th><th>of ${r.model.numLayers}</th>` +
    `<th>scored tokens</th><th>tokens/s</th><th>shots</th><th>truncated</th></tr></thead><tbody>${
      rows.join("")
    }</tbody></table>`;
}

/** Grouped bars: per task, one bar a mode, height = mean layers per scored token. */
function layersChart(r: EvalResults): string {
  const modes = r.settings.modes;
  const W = 720, H = 260, ml = 44, mr = 140, mt = 14, mb = 36;
  const pw = W - ml - mr, ph = H - mt - mb;
  const L = r.model.numLayers;
  const y = (l: number) => mt + ph * (1 - l / L);
  const slot = pw / Math.max(1, r.tasks.length);
  const bw = Math.min(28, (slot - 12) / Math.max(1, modes.length));
  const parts: string[] = [];
  for (const l of [0, L / 4, L / 2, (3 * L) / 4, L]) {
    parts.push(`<line x1="${ml}" x2="${ml + pw}" y1="${y(l)}" y2="${y(l)}" class="grid"/>`);
    parts.push(`<text x="${ml - 6}" y="${y(l) + 4}" text-anchor="end">${l.toFixed(0)}</text>`);
  }
  r.tasks.forEach((t, i) => {
    const x0 = ml + i * slot + (slot - bw * modes.length) / 2;
    t.modes.forEach((m, k) => {
      if (m.mean_layers === null) return;
      parts.push(
        `<rect x="${x0 + k * bw}" y="${y(m.mean_layers)}" width="${bw - 2}" height="${
          mt + ph - y(m.mean_layers)
        }" ` +
          `fill="${color(k)}"><title>${escapeHtml(t.task)} · ${escapeHtml(m.mode)}: ${
            m.mean_layers.toFixed(2)
          } layers</title></rect>`,
      );
    });
    parts.push(
      `<text x="${ml + i * slot + slot / 2}" y="${mt + ph + 16}" text-anchor="middle">${
        escapeHtml(t.task)
      }</text>`,
    );
  });
  parts.push(...legend(modes, ml + pw + 16, mt));
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" ` +
    `aria-label="mean layers per scored token, per task and mode">${parts.join("")}</svg>`;
}

function legend(modes: string[], x: number, y: number): string[] {
  return modes.flatMap((m, k) => [
    `<rect x="${x}" y="${y + k * 18}" width="12" height="12" fill="${color(k)}"/>`,
    `<text x="${x + 18}" y="${y + k * 18 + 10}">${escapeHtml(m)}</text>`,
  ]);
}

/** Score ÷ full against layers ÷ all layers: one point per task and mode, the diagonal for reference. */
function tradeoffChart(r: EvalResults): string {
  if (!r.settings.modes.includes("full")) return "<p>Add the full mode to --modes to compare against it.</p>";
  const W = 420, H = 300, ml = 48, mr = 120, mt = 14, mb = 40;
  const pw = W - ml - mr, ph = H - mt - mb;
  const pts = r.tasks.flatMap((t) =>
    t.modes.map((m, k) => ({
      t: t.task,
      m: m.mode,
      k,
      x: m.mean_layers_fraction,
      y: r.retention.find((x) => x.mode === m.mode)?.tasks[t.task] ?? (m.mode === "full" ? 1 : null),
    }))
  ).filter((p): p is { t: string; m: string; k: number; x: number; y: number } =>
    p.x !== null && p.y !== null
  );
  // The score axis spans what the points need around 1 (a ratio near 1 is the common case).
  const ymax = Math.max(1.1, ...pts.map((p) => p.y + 0.05));
  const ymin = Math.max(0, Math.min(0.5, ...pts.map((p) => p.y - 0.1)));
  const X = (v: number) => ml + pw * v;
  const Y = (v: number) => mt + ph * (1 - (v - ymin) / (ymax - ymin));
  const parts = [
    `<line x1="${X(ymin)}" y1="${Y(ymin)}" x2="${X(Math.min(1, ymax))}" y2="${
      Y(Math.min(1, ymax))
    }" class="grid"/>`,
    `<line x1="${X(0)}" y1="${Y(1)}" x2="${X(1)}" y2="${Y(1)}" class="axis"/>`,
    `<text x="${ml + pw / 2}" y="${
      H - 6
    }" text-anchor="middle">layers per token ÷ ${r.model.numLayers}</text>`,
    `<text x="${ml - 6}" y="${Y(1) + 4}" text-anchor="end">1.0</text>`,
    `<text x="${ml - 6}" y="${Y(ymin) + 4}" text-anchor="end">${ymin.toFixed(1)}</text>`,
    `<text x="${X(1)}" y="${mt + ph + 16}" text-anchor="end">1.0</text>`,
    `<text x="${X(0)}" y="${mt + ph + 16}">0</text>`,
    `<text x="${ml - 34}" y="${mt + ph / 2}" transform="rotate(-90 ${ml - 34} ${
      mt + ph / 2
    })" text-anchor="middle">score ÷ full</text>`,
  ];
  for (const p of pts) {
    parts.push(
      `<circle cx="${X(p.x)}" cy="${Y(p.y)}" r="4" fill="${color(p.k)}"><title>${escapeHtml(p.t)} · ${
        escapeHtml(p.m)
      }: ` +
        `score ÷ full ${p.y.toFixed(3)}, layers ${p.x.toFixed(3)}</title></circle>`,
    );
  }
  parts.push(...legend(r.settings.modes, ml + pw + 16, mt));
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" ` +
    `aria-label="score relative to full depth against layers used">${parts.join("")}</svg>`;
}

function groupsFold(t: TaskResult): string {
  const first = t.modes.find((m) => m.groups);
  if (!first?.groups) return "";
  const rows = first.groups.map((g) =>
    `<tr><td>${escapeHtml(g.group)}</td><td>${g.items}</td>` +
    t.modes.map((m) =>
      `<td>${fmtEstimate(m.groups?.find((x) => x.group === g.group)?.metrics[t.primary])}</td>`
    ).join("") + `</tr>`
  );
  return `<details><summary>${
    escapeHtml(t.task)
  }: ${first.groups.length} subjects (${t.primary}; the task's score is their macro average, ` +
    `micro ${
      t.modes.map((m) => `${escapeHtml(m.mode)} ${fmtEstimate(m.micro?.[t.primary])}`).join(", ")
    })</summary>` +
    `<table><thead><tr><th>subject</th><th>items</th>${
      t.modes.map((m) => `<th>${escapeHtml(m.mode)}</th>`).join("")
    }</tr></thead>` +
    `<tbody>${rows.join("")}</tbody></table></details>`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#111}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;margin:0}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child,.m{text-align:left}tr.total td{border-top:2px solid #888}
svg text{font:11px system-ui,sans-serif;fill:#333}svg .grid{stroke:#e5e5e5}svg .axis{stroke:#999;stroke-dasharray:4 3}
.charts{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}details{margin:8px 0}
`;

export function renderEvalReport(r: EvalResults): string {
  const s = r.settings;
  const sources = r.tasks.map((t) =>
    `${escapeHtml(t.task)}: ${escapeHtml(t.source)}${t.shots ? ` (${t.shots}-shot)` : ""}`
  );
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>flexidepth eval — scores and layers per mode</title><style>${CSS}</style></head>
<body>
<h1>Scores and layers per mode</h1>
<p class="meta">model <code>${escapeHtml(r.model.dir)}</code> · ${r.model.numLayers} layers` +
    `${r.model.routingLayers.length ? `, ${r.model.routingLayers.length} routed` : ""}${
      r.model.dmtdCycle ? ` · DMTD, τ ${r.model.dmtdCycle}` : ""
    }` +
    ` · modes ${s.modes.map(escapeHtml).join(", ")} · ${
      s.chat ? "chat template for generation" : "raw prompts"
    }` +
    ` · ${
      s.limit === null ? "all items" : `first ${s.limit} items`
    } · seed ${s.seed} · context ${s.context}` +
    `${s.quant !== "none" ? ` · weights ${s.quant}` : ""}</p>
<p class="meta">${sources.join(" · ")}</p>
<h2>Scores</h2>
${scoreTable(r)}
<p class="meta">★ the task's score (retention uses it). ± the standard error of the mean. Retention: mean over tasks of
score ÷ the full mode's score on the same task (the FlexiDepth paper's definition).</p>
${r.tasks.map(groupsFold).join("")}
<h2>Layers</h2>
<div class="charts">${layersChart(r)}${tradeoffChart(r)}</div>
<p class="meta">Left: mean layers per scored token (continuation tokens of multiple choice, generated tokens).
Right: each task's score ÷ full against its layers ÷ ${r.model.numLayers}; above the diagonal, the score costs fewer layers.</p>
${detailTable(r)}
</body></html>
`;
}
