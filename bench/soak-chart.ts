/** The soak run's SVG: one line chart per figure over time, warm-up shaded. */

export interface Series {
  label: string;
  color: string;
  points: [number, number][];
}

export interface Panel {
  title: string;
  unit: string;
  series: Series[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const nice = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

export function renderSoakChart(title: string, subtitle: string, panels: Panel[], warmupS: number, totalS: number): string {
  const W = 960;
  const panelH = 170;
  const top = 60;
  const H = top + panels.length * panelH + 20;
  const left = 70;
  const width = W - left - 30;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="16" y="26" font-size="17" font-weight="600">${esc(title)}</text>`,
    `<text x="16" y="44" fill="#4a5568">${esc(subtitle)}</text>`,
  ];
  const xOf = (t: number) => left + (totalS > 0 ? (t / totalS) * width : 0);
  panels.forEach((p, i) => {
    const y0 = top + i * panelH + 20;
    const h = panelH - 50;
    const values = p.series.flatMap((s) => s.points.map(([, v]) => v)).filter(Number.isFinite);
    const max = Math.max(1e-9, ...values) * 1.1;
    parts.push(`<text x="${left}" y="${y0 - 6}" font-weight="600">${esc(p.title)} <tspan fill="#718096" font-weight="400">(${esc(p.unit)})</tspan></text>`);
    parts.push(`<rect x="${left}" y="${y0}" width="${(xOf(Math.min(warmupS, totalS)) - left).toFixed(1)}" height="${h}" fill="#edf2f7"/>`);
    parts.push(`<rect x="${left}" y="${y0}" width="${width}" height="${h}" fill="none" stroke="#cbd5e0"/>`);
    parts.push(`<text x="${left - 6}" y="${y0 + 10}" text-anchor="end" fill="#718096">${nice(max)}</text>`);
    parts.push(`<text x="${left - 6}" y="${y0 + h}" text-anchor="end" fill="#718096">0</text>`);
    p.series.forEach((s, j) => {
      const pts = s.points.filter(([, v]) => Number.isFinite(v)).map(([t, v]) => `${xOf(t).toFixed(1)},${(y0 + h - (v / max) * h).toFixed(1)}`);
      if (pts.length) parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.6" points="${pts.join(' ')}"/>`);
      parts.push(`<rect x="${left + 8 + j * 190}" y="${y0 + h + 12}" width="10" height="10" fill="${s.color}"/><text x="${left + 22 + j * 190}" y="${y0 + h + 21}">${esc(s.label)}</text>`);
    });
    parts.push(`<text x="${left + width}" y="${y0 + h + 21}" text-anchor="end" fill="#718096">${Math.round(totalS)} s</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
