/**
 * A small SVG writer for benchmark charts: grouped bar charts with a linear
 * or logarithmic value axis, ticks, a legend and a value label on each bar.
 * Output is well-formed XML (every text and attribute escaped), inline in
 * an HTML page, with no script and no dependency.
 *
 * Each bar is `<rect class="bar" data-group=".." data-series=".." data-value="..">`
 * so a test (or a reader with devtools) can find the figure behind it.
 */

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;'));
}

export interface Bar {
  series: string;
  value: number;
}

export interface BarGroup {
  label: string;
  bars: Bar[];
}

export interface BarChart {
  title: string;
  /** Axis label, e.g. "msgs/s". */
  unit: string;
  groups: BarGroup[];
  /** Logarithmic value axis (for figures spanning decades). */
  log?: boolean;
  /** A one-line caption under the title: what the chart shows. */
  caption?: string;
}

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/** 1234567 -> "1.23M"; 0.0123 -> "0.0123". */
export function formatValue(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return v.toFixed(1);
  if (a === 0) return '0';
  return v.toPrecision(3);
}

/** Round tick values covering [0, max] (linear) or the decades of [min, max] (log). */
function ticks(min: number, max: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) out.push(10 ** e);
    return out;
  }
  if (max <= 0) return [0, 1];
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 0.999; v += step) out.push(+v.toPrecision(12));
  return out;
}

export function barChart(c: BarChart): string {
  const series = [...new Set(c.groups.flatMap((g) => g.bars.map((b) => b.series)))];
  const values = c.groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => Number.isFinite(v));
  const log = c.log === true && values.length > 0 && values.every((v) => v > 0);
  const maxV = values.length ? Math.max(...values) : 1;
  const minV = values.length ? Math.min(...values) : 1;
  const tk = ticks(log ? minV : 0, maxV, log);
  const lo = log ? tk[0]! : 0;
  const hi = tk[tk.length - 1]!;
  const barW = 22;
  const gap = 18;
  const left = 70;
  const top = c.caption ? 52 : 36;
  const plotH = 220;
  // Each group is as wide as its bars (packed; a series keeps its colour) or its label.
  const groupWs = c.groups.map((g) => Math.max(g.bars.length * barW + gap, g.label.length * 6.5 + 10));
  const groupXs: number[] = [];
  let acc = left;
  for (const w of groupWs) { groupXs.push(acc); acc += w; }
  const plotW = Math.max(acc - left, 160);
  const legendW = 20 + Math.max(...series.map((x) => x.length * 6.5), 60);
  const width = Math.max(left + plotW + 20 + legendW, left + (c.caption?.length ?? 0) * 6 + 20);
  const height = top + plotH + 60;
  const y = (v: number): number => {
    const f = log ? (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1) : (v - lo) / (hi - lo || 1);
    return top + plotH - f * plotH;
  };
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<title>${escapeXml(c.title)}</title>`);
  out.push(`<text x="${left}" y="18" font-size="14" font-weight="bold">${escapeXml(c.title)}</text>`);
  if (c.caption) out.push(`<text x="${left}" y="36" fill="#555">${escapeXml(c.caption)}</text>`);
  // axis and grid
  for (const t of tk) {
    const ty = y(t).toFixed(1);
    out.push(`<line x1="${left}" x2="${left + plotW}" y1="${ty}" y2="${ty}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${ty}" text-anchor="end" dominant-baseline="middle">${escapeXml(formatValue(t))}</text>`);
  }
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`);
  out.push(`<text x="14" y="${top + plotH / 2}" transform="rotate(-90 14 ${top + plotH / 2})" text-anchor="middle">${escapeXml(c.unit + (log ? ' (log scale)' : ''))}</text>`);
  c.groups.forEach((g, gi) => {
    const gw = groupWs[gi]!;
    const gx = groupXs[gi]! + (gw - g.bars.length * barW) / 2;
    g.bars.forEach((b, bi) => {
      const si = series.indexOf(b.series);
      const x = gx + bi * barW;
      const v = Number.isFinite(b.value) ? b.value : 0;
      const by = y(v);
      const h = Math.max(top + plotH - by, 0.5);
      out.push(`<rect class="bar" x="${x.toFixed(1)}" y="${(top + plotH - h).toFixed(1)}" width="${barW - 3}" height="${h.toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}" data-group="${escapeXml(g.label)}" data-series="${escapeXml(b.series)}" data-value="${v}"><title>${escapeXml(`${g.label} / ${b.series}: ${formatValue(v)} ${c.unit}`)}</title></rect>`);
      out.push(`<text x="${(x + (barW - 3) / 2).toFixed(1)}" y="${(top + plotH - h - 3).toFixed(1)}" text-anchor="middle" font-size="9">${escapeXml(formatValue(v))}</text>`);
    });
    out.push(`<text x="${(groupXs[gi]! + gw / 2).toFixed(1)}" y="${top + plotH + 16}" text-anchor="middle">${escapeXml(g.label)}</text>`);
  });
  // legend
  series.forEach((s, si) => {
    const lx = left + plotW + 20;
    const ly = top + si * 16;
    out.push(`<rect x="${lx}" y="${ly}" width="10" height="10" fill="${PALETTE[si % PALETTE.length]}"/>`);
    out.push(`<text x="${lx + 14}" y="${ly + 9}">${escapeXml(s)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
