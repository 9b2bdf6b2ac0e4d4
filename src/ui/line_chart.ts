/** A small self-contained SVG line chart for report pages: one line per series, axes with a few ticks. */

import { escapeHtml } from "../experiment/report.ts";

export interface Series {
  name: string;
  color: string;
  /** [x, y] points in x order; y null is a gap. */
  points: Array<[number, number | null]>;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
}

const nice = (v: number) =>
  Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);

export function lineChart(series: Series[], o: ChartOptions): string {
  const W = o.width ?? 640, H = o.height ?? 260, ml = 56, mr = 140, mt = 24, mb = 40;
  const all = series.flatMap((s) => s.points.filter((p): p is [number, number] => p[1] !== null));
  if (all.length === 0) return `<p>${escapeHtml(o.title)}: no data yet.</p>`;
  const [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  const sx = (x: number) => ml + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (W - ml - mr);
  const sy = (y: number) => mt + (y1 > y0 ? 1 - (y - y0) / (y1 - y0) : 0.5) * (H - mt - mb);
  const paths = series.map((s) => {
    let d = "", pen = false;
    for (const [x, y] of s.points) {
      if (y === null) pen = false;
      else d += `${pen ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`, pen = true;
    }
    return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"/>`;
  });
  const ticks = [0, 0.5, 1].flatMap((f) => {
    const yv = y0 + f * (y1 - y0), xv = x0 + f * (x1 - x0);
    return [
      `<text x="${ml - 6}" y="${sy(yv) + 4}" text-anchor="end">${nice(yv)}</text>`,
      `<text x="${sx(xv)}" y="${H - mb + 16}" text-anchor="middle">${nice(xv)}</text>`,
    ];
  });
  const legend = series.map((s, i) =>
    `<rect x="${W - mr + 10}" y="${mt + i * 18}" width="12" height="3" fill="${s.color}"/>` +
    `<text x="${W - mr + 28}" y="${mt + i * 18 + 5}">${escapeHtml(s.name)}</text>`
  );
  return `<figure><figcaption>${escapeHtml(o.title)}</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" ` +
    `height="${H}" font-size="11" font-family="sans-serif"><rect x="${ml}" y="${mt}" width="${
      W - ml - mr
    }" ` +
    `height="${H - mt - mb}" fill="none" stroke="#ccc"/>${paths.join("")}${ticks.join("")}${
      legend.join("")
    }` +
    `<text x="${(ml + W - mr) / 2}" y="${H - 6}" text-anchor="middle">${escapeHtml(o.xLabel)}</text>` +
    `<text x="12" y="${(mt + H - mb) / 2}" transform="rotate(-90 12 ${(mt + H - mb) / 2})" ` +
    `text-anchor="middle">${escapeHtml(o.yLabel)}</text></svg></figure>`;
}
