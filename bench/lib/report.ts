// Output of the benchmark: the markdown table and a hand-written SVG line chart (no chart dependency).

export interface Row {
  figure: string;
  broker: string;
  baseline: string;
  /** broker / baseline; null when there is no numeric baseline. */
  ratio: number | null;
  target: string;
  /** null when the figure has no target (information only) or could not be measured. */
  met: boolean | null;
}

const fmtRatio = (r: number | null): string => (r === null || !Number.isFinite(r) ? '–' : `${r.toFixed(2)}x`);
const fmtMet = (m: boolean | null): string => (m === null ? '–' : m ? 'yes' : '**no**');
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function markdownTable(rows: readonly Row[]): string {
  const head = '| figure | broker | baseline | ratio | target | met? |\n|---|---|---|---|---|---|\n';
  return head + rows.map((r) => `| ${cell(r.figure)} | ${cell(r.broker)} | ${cell(r.baseline)} | ${fmtRatio(r.ratio)} | ${cell(r.target)} | ${fmtMet(r.met)} |`).join('\n') + '\n';
}

export interface Series {
  label: string;
  color: string;
  dashed?: boolean;
  points: { x: number; y: number }[];
}

export interface Panel {
  title: string;
  yLabel: string;
  series: Series[];
  /** Horizontal reference line (a target). */
  hline?: { y: number; label: string };
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.6, 2, 2.4, 3.2, 4, 4.8, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const fmtTick = (v: number): string => (v >= 1000 ? `${+(v / 1000).toFixed(2)}k` : `${+v.toFixed(2)}`);

function panelSvg(p: Panel, x0: number, y0: number, w: number, h: number, xLabel: string): string {
  const left = 56, right = 12, top = 28, bottom = 40;
  const pw = w - left - right, ph = h - top - bottom;
  const all = p.series.flatMap((s) => s.points).filter((pt) => Number.isFinite(pt.x) && Number.isFinite(pt.y));
  const xMax = niceMax(Math.max(1, ...all.map((pt) => pt.x)));
  const yMax = niceMax(Math.max(p.hline?.y ?? 0, ...all.map((pt) => pt.y)) * 1.05);
  const sx = (x: number) => x0 + left + (x / xMax) * pw;
  const sy = (y: number) => y0 + top + ph - (y / yMax) * ph;
  const out: string[] = [];
  out.push(`<text x="${x0 + left + pw / 2}" y="${y0 + 16}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const yv = (yMax * i) / 4, xv = (xMax * i) / 4;
    out.push(`<line x1="${x0 + left}" x2="${x0 + left + pw}" y1="${sy(yv)}" y2="${sy(yv)}" stroke="#ddd"/>`);
    out.push(`<text x="${x0 + left - 6}" y="${sy(yv) + 4}" text-anchor="end" font-size="11">${fmtTick(yv)}</text>`);
    out.push(`<text x="${sx(xv)}" y="${y0 + top + ph + 16}" text-anchor="middle" font-size="11">${fmtTick(xv)}</text>`);
  }
  out.push(`<rect x="${x0 + left}" y="${y0 + top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${x0 + left + pw / 2}" y="${y0 + h - 6}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(${x0 + 14},${y0 + top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(p.yLabel)}</text>`);
  if (p.hline) {
    out.push(`<line x1="${x0 + left}" x2="${x0 + left + pw}" y1="${sy(p.hline.y)}" y2="${sy(p.hline.y)}" stroke="#c00" stroke-dasharray="2,3"/>`);
    out.push(`<text x="${x0 + left + pw - 4}" y="${sy(p.hline.y) - 4}" text-anchor="end" font-size="11" fill="#c00">${esc(p.hline.label)}</text>`);
  }
  p.series.forEach((s, i) => {
    const pts = s.points.filter((pt) => Number.isFinite(pt.x) && Number.isFinite(pt.y)).sort((a, b) => a.x - b.x);
    if (pts.length > 1) {
      out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6,4"' : ''} points="${pts.map((pt) => `${sx(pt.x).toFixed(1)},${sy(pt.y).toFixed(1)}`).join(' ')}"/>`);
    }
    const marker = s.dashed ? `fill="#fff" stroke="${s.color}" stroke-width="1.5"` : `fill="${s.color}"`;
    for (const pt of pts) out.push(`<circle cx="${sx(pt.x).toFixed(1)}" cy="${sy(pt.y).toFixed(1)}" r="3.5" ${marker}/>`);
    const ly = y0 + top + 8 + i * 15;
    out.push(`<line x1="${x0 + left + 8}" x2="${x0 + left + 28}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6,4"' : ''}/>`);
    out.push(`<text x="${x0 + left + 32}" y="${ly + 4}" font-size="11">${esc(s.label)}</text>`);
  });
  return out.join('\n');
}

/** Panels side by side, sharing the x label. */
export function svgChart(panels: readonly Panel[], xLabel: string, caption: string): string {
  const w = 420, h = 300;
  const width = w * panels.length, height = h + 22;
  const body = panels.map((p, i) => panelSvg(p, i * w, 0, w, h, xLabel)).join('\n');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">\n` +
    `<rect width="100%" height="100%" fill="#fff"/>\n${body}\n` +
    `<text x="8" y="${height - 6}" font-size="10" fill="#555">${esc(caption)}</text>\n</svg>\n`
  );
}
