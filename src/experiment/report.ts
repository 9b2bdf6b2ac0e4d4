/**
 * report.html: one self-contained page (inline CSS, SVG and a small script; no external requests) with
 *  - the summary table,
 *  - a per-token heat-map: every generated token's text on a light-to-dark blue background by layers used
 *    (the colours of the terminal renderer and of the paper's figure), one row per sample,
 *  - per routed layer, the fraction of generated tokens that ran it, one line per task,
 *  - per task, a histogram of layers per generated token.
 */

import type { SampleRecord } from "./records.ts";
import type { ExperimentSummary, TaskStats } from "./stats.ts";

const LIGHT = [222, 235, 247];
const DARK = [8, 48, 107];
const TASK_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"];

/** Light (fewest layers) to dark (all layers) blue, as `src/cli/render.ts`'s layerColor; text colour to match. */
export function layerRgb(layers: number, min: number, max: number): { bg: string; fg: string } {
  const t = max > min ? Math.min(1, Math.max(0, (layers - min) / (max - min))) : 1;
  const [r, g, b] = LIGHT.map((l, i) => Math.round(l + (DARK[i] - l) * t));
  return { bg: `rgb(${r},${g},${b})`, fg: t > 0.5 ? "#fff" : "#000" };
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const num = (x: number | null, d: number) => (x === null ? "—" : x.toFixed(d));

function summaryTable(s: ExperimentSummary): string {
  const L = s.model.numLayers;
  const rows = s.tasks.map((t) =>
    `<tr><td>${escapeHtml(t.task)}</td><td>${t.kind}</td><td>${t.samples}</td><td>${t.tokens}</td>` +
    `<td>${num(t.mean_layers, 2)}</td><td>${num(t.variance_layers, 3)}</td><td>${
      num(t.mean_layers_fraction, 3)
    }</td>` +
    `<td>${t.paper_mean_layers.toFixed(2)}</td><td>${t.paper_fraction.toFixed(3)}</td>` +
    `<td>${num(t.mean_prompt_layers, 2)}</td><td>${num(t.tokens_per_s, 1)}</td>` +
    `<td>${t.accuracy ? `${t.accuracy.correct}/${t.accuracy.total}` : "—"}</td></tr>`
  );
  return `<table class="summary"><thead><tr><th>task</th><th>kind</th><th>samples</th><th>tokens</th>` +
    `<th>layers / token</th><th>variance</th><th>of ${L}</th><th>paper</th><th>paper of ${s.paper_num_layers}</th>` +
    `<th>prompt layers</th><th>tokens/s</th><th>accuracy</th></tr></thead><tbody>${
      rows.join("")
    }</tbody></table>`;
}

function legend(min: number, max: number): string {
  const cells = [];
  for (let l = min; l <= max; l++) {
    cells.push(`<span class="t l${l}">${l}</span>`);
  }
  return `<p class="legend">layers used: ${cells.join("")}</p>`;
}

function layerUsageChart(s: ExperimentSummary): string {
  const layers = s.model.routingLayers;
  if (layers.length === 0) return "<p>This model has no routed layers: every token runs every layer.</p>";
  const W = 640, H = 280, ml = 48, mr = 130, mt = 16, mb = 40;
  const pw = W - ml - mr, ph = H - mt - mb;
  const x = (k: number) => ml + (layers.length === 1 ? pw / 2 : (k * pw) / (layers.length - 1));
  const y = (f: number) => mt + ph * (1 - f);
  const parts: string[] = [];
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<line x1="${ml}" x2="${ml + pw}" y1="${y(f)}" y2="${y(f)}" class="grid"/>`);
    parts.push(`<text x="${ml - 6}" y="${y(f) + 4}" text-anchor="end">${f.toFixed(2)}</text>`);
  }
  const every = Math.ceil(layers.length / 16);
  layers.forEach((l, k) => {
    if (k % every === 0 || k === layers.length - 1) {
      parts.push(`<text x="${x(k)}" y="${mt + ph + 16}" text-anchor="middle">${l}</text>`);
    }
  });
  parts.push(`<text x="${ml + pw / 2}" y="${H - 4}" text-anchor="middle">routed layer</text>`);
  s.tasks.forEach((t, i) => {
    const color = TASK_COLORS[i % TASK_COLORS.length];
    const pts = t.layer_usage.map((u, k) => (u.fraction === null ? null : [x(k), y(u.fraction)]))
      .filter((p): p is number[] => p !== null);
    if (pts.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2" points="${
          pts.map((p) => p.join(",")).join(" ")
        }"/>`,
      );
    }
    for (const [px, py] of pts) parts.push(`<circle cx="${px}" cy="${py}" r="3" fill="${color}"/>`);
    const ly = mt + 8 + i * 18;
    parts.push(
      `<line x1="${ml + pw + 16}" x2="${
        ml + pw + 36
      }" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
    );
    parts.push(`<text x="${ml + pw + 42}" y="${ly + 4}">${escapeHtml(t.task)}</text>`);
  });
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" ` +
    `aria-label="fraction of generated tokens that ran each routed layer">${parts.join("")}</svg>`;
}

function histogram(t: TaskStats, min: number, max: number): string {
  const W = 300, H = 170, ml = 36, mr = 8, mt = 24, mb = 30;
  const pw = W - ml - mr, ph = H - mt - mb;
  const total = t.histogram.reduce((a, h) => a + h.count, 0);
  const peak = Math.max(...t.histogram.map((h) => h.count), 1) / Math.max(total, 1);
  const bw = pw / t.histogram.length;
  const every = Math.ceil(t.histogram.length / 12);
  const parts = [
    `<text x="${W / 2}" y="14" text-anchor="middle" class="title">${escapeHtml(t.task)} · mean ${
      num(t.mean_layers, 2)
    }</text>`,
    `<line x1="${ml}" x2="${ml + pw}" y1="${mt + ph}" y2="${mt + ph}" class="axis"/>`,
    `<text x="${ml - 4}" y="${mt + 4}" text-anchor="end">${peak.toFixed(2)}</text>`,
    `<text x="${ml - 4}" y="${mt + ph}" text-anchor="end">0</text>`,
  ];
  t.histogram.forEach((h, k) => {
    const frac = total ? h.count / total : 0;
    const bh = peak > 0 ? (ph * frac) / peak : 0;
    const bx = ml + k * bw;
    const c = layerRgb(h.layers, min, max);
    parts.push(
      `<rect x="${bx + 1}" y="${mt + ph - bh}" width="${
        Math.max(bw - 2, 1)
      }" height="${bh}" fill="${c.bg}" ` +
        `stroke="#08306b" stroke-width="0.5"><title>${h.layers} layers: ${h.count} tokens</title></rect>`,
    );
    if (k % every === 0 || k === t.histogram.length - 1) {
      parts.push(`<text x="${bx + bw / 2}" y="${mt + ph + 14}" text-anchor="middle">${h.layers}</text>`);
    }
  });
  parts.push(`<text x="${ml + pw / 2}" y="${H - 2}" text-anchor="middle">layers per token</text>`);
  return `<svg class="hist" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" ` +
    `aria-label="histogram of layers per token, ${escapeHtml(t.task)}">${parts.join("")}</svg>`;
}

/** One class per layer count (`.l4`), so a token's span carries no inline style. */
function layerClasses(min: number, max: number): string {
  const rules = [];
  for (let l = min; l <= max; l++) {
    const c = layerRgb(l, min, max);
    rules.push(`.l${l}{background:${c.bg};color:${c.fg}}`);
  }
  return rules.join("");
}

/** Tokens as `<span class="t l4" data-r="011">text</span>`: layer class, run bit per routed layer. */
function heatRow(r: SampleRecord): string {
  const toks = r.tokens.map((t) =>
    `<span class="t l${t.layers}${t.text === "" ? " empty" : ""}" data-r="${t.routes.join("")}">${
      escapeHtml(t.text)
    }</span>`
  );
  const verdict = r.correct === undefined
    ? ""
    : r.correct
    ? ` <span class="ok">✓</span>`
    : ` <span class="bad">✗</span>`;
  const input = typeof r.input === "string" ? r.input : `[${r.input.join(", ")}]`;
  return `<div class="hm-row" data-task="${escapeHtml(r.task)}" data-sample="${r.sample}">` +
    `<div class="hm-label" title="${escapeHtml(input)}">#${r.sample}${verdict}<br><small>${
      r.mean_layers.toFixed(2)
    }</small></div><div class="hm-text">${toks.join("")}</div></div>`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#111}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}.meta{color:#555;margin:0}
table.summary{border-collapse:collapse;margin:8px 0}table.summary td,table.summary th{border:1px solid #ccc;padding:3px 8px;text-align:right}
table.summary td:first-child,table.summary th:first-child{text-align:left}
.legend .t{display:inline-block;min-width:22px;text-align:center;margin-right:1px}
svg text{font:11px system-ui,sans-serif;fill:#333}svg .title{font-weight:600;font-size:12px}
svg .grid{stroke:#e5e5e5}svg .axis{stroke:#999}
.hists{display:flex;flex-wrap:wrap;gap:12px}
.hm-row{display:flex;gap:8px;border-top:1px solid #eee;padding:4px 0}
.hm-label{flex:0 0 56px;color:#555;font-size:12px}
.hm-text{font:13px/1.9 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-word}
.t{border-radius:2px;padding:1px 0}.t.empty{display:inline-block;width:3px;height:1em;vertical-align:middle}
.ok{color:#1a7f37}.bad{color:#cf222e}
#info{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:4px 0;min-height:1.4em;color:#333;font-size:12px}
`;

/** Hovering a token shows its layers and which routed layers ran. */
function script(routingLayers: number[]): string {
  return `
(function () {
  var routed = ${JSON.stringify(routingLayers)};
  var info = document.getElementById("info");
  document.addEventListener("mouseover", function (e) {
    var el = e.target;
    if (!el || !el.classList || !el.classList.contains("t") || !el.hasAttribute("data-r")) return;
    var bits = el.getAttribute("data-r"), ran = [];
    for (var k = 0; k < bits.length; k++) if (bits[k] === "1") ran.push(routed[k]);
    var layers = /\\bl(\\d+)\\b/.exec(el.className);
    info.textContent = JSON.stringify(el.textContent) + " · " + (layers ? layers[1] : "?") +
      " layers · routed layers run: " + (ran.length ? ran.join(" ") : "none");
  });
  document.body.setAttribute("data-script", "ok");
})();
`;
}

export function renderReport(s: ExperimentSummary, records: SampleRecord[]): string {
  const { minLayers: min, numLayers: max, routingLayers } = s.model;
  const st = s.settings;
  const sections = s.tasks.map((t) => {
    const rows = records.filter((r) => r.task === t.task).sort((a, b) => a.sample - b.sample)
      .map(heatRow);
    const acc = t.accuracy ? ` · accuracy ${t.accuracy.correct}/${t.accuracy.total}` : "";
    return `<section class="task" id="task-${escapeHtml(t.task)}"><h3>${
      escapeHtml(t.task)
    } <small>(${t.kind} · ` +
      `${t.samples} samples · mean ${num(t.mean_layers, 2)} layers per token${acc})</small></h3>${
        rows.join("")
      }</section>`;
  });
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>flexidepth experiment — layers per token</title><style>${CSS}${layerClasses(min, max)}</style></head>
<body>
<h1>Layers per token: the layer-allocation study</h1>
<p class="meta">model <code>${
    escapeHtml(s.model.dir)
  }</code> · ${max} layers, ${routingLayers.length} routed (${routingLayers.join(", ")}) · ${
    st.chat ? "chat template" : "raw prompts"
  } · greedy · up to ${st.max_tokens} tokens · seed ${st.seed}` +
    ` · paragraphs: ${escapeHtml(st.paragraphs.source)} (${st.paragraphs.count})${
      st.full_depth ? " · full depth" : ` · threshold ${st.threshold}`
    }${st.quant && st.quant !== "none" ? ` · weights quantized ${st.quant}` : ""}</p>
<h2>Summary</h2>
${summaryTable(s)}
<p class="meta">Paper: FlexiDepth-Llama-3-8B-Instruct, layers 16..${s.paper_num_layers}. Compare fractions of each model's layers.</p>
<h2>Routed layers run, per task</h2>
<p class="meta">Fraction of generated tokens that ran each routed layer.</p>
${layerUsageChart(s)}
<h2>Layers per token</h2>
<div class="hists">${s.tasks.map((t) => histogram(t, min, max)).join("")}</div>
<h2>Per-token heat-map</h2>
${legend(min, max)}
<div id="info">Hover a token for its layers.</div>
${sections.join("\n")}
<script>${script(routingLayers)}</script>
</body></html>
`;
}
