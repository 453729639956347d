/** A plain SVG bar chart of the headline figures: one panel per figure, one bar per target. */
import { fmt } from './report.js';
import type { Results } from './report.js';
import type { ScenarioName } from './scenarios.js';

interface Panel {
  title: string;
  unit: string;
  better: 'higher' | 'lower';
  bars: { label: string; value: number }[];
}

const COLORS: Record<string, string> = { iotc: '#2b6cb0', 'iotc-mqtt': '#4299e1', mosquitto: '#c05621', bare: '#718096' };

const PANELS: { scenario: ScenarioName; key: string; title: string; unit: string; better: 'higher' | 'lower' }[] = [
  { scenario: 'p2p', key: 'msgPerSec', title: 'Point-to-point throughput', unit: 'msg/s', better: 'higher' },
  { scenario: 'p2p', key: 'cpuUsPerMsg', title: 'Point-to-point server CPU per message', unit: 'µs', better: 'lower' },
  { scenario: 'deep-ff', key: 'cpuUsPerMsg', title: 'Deep pipelines, fire-and-forget: CPU per message', unit: 'µs', better: 'lower' },
  { scenario: 'deep', key: 'cpuUsPerMsg', title: 'Deep pipelines, acked: CPU per message', unit: 'µs', better: 'lower' },
  { scenario: 'fanin', key: 'msgPerSec', title: 'Fan-in throughput', unit: 'msg/s', better: 'higher' },
  { scenario: 'fanout', key: 'msgPerSec', title: 'Fan-out deliveries', unit: 'msg/s', better: 'higher' },
  { scenario: 'fanout', key: 'cpuUsPerMsg', title: 'Fan-out server CPU per delivery', unit: 'µs', better: 'lower' },
  { scenario: 'latency', key: 'p99Ms', title: 'Open-loop p99 latency', unit: 'ms', better: 'lower' },
  { scenario: 'latency', key: 'loopMaxMs', title: 'Open loop: longest event-loop pause', unit: 'ms', better: 'lower' },
  { scenario: 'connections', key: 'rssPerConnKiB', title: 'RSS per idle connection', unit: 'KiB', better: 'lower' },
  { scenario: 'connections', key: 'connectPerSec', title: 'Connect rate', unit: 'conn/s', better: 'higher' },
];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderChart(results: Results): string {
  const panels: Panel[] = [];
  for (const p of PANELS) {
    const s = results.scenarios.find((x) => x.name === p.scenario);
    if (!s) continue;
    const bars = Object.entries(s.targets)
      .map(([name, t]) => ({ name, label: t.label, value: t.median[p.key] }))
      .filter((b) => Number.isFinite(b.value));
    if (bars.length) panels.push({ title: p.title, unit: p.unit, better: p.better, bars: bars.map((b) => ({ label: b.name, value: b.value })) });
  }
  const W = 960;
  const colW = W / 2;
  const rowH = 24;
  const labelW = 110;
  const heights = panels.map((p) => 44 + p.bars.length * rowH + 8);
  const rows = Math.ceil(panels.length / 2);
  const rowTop: number[] = [];
  let y = 56;
  for (let r = 0; r < rows; r++) {
    rowTop.push(y);
    y += Math.max(heights[2 * r] ?? 0, heights[2 * r + 1] ?? 0);
  }
  const H = y + 30;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="16" y="26" font-size="17" font-weight="600">IOTcommunicate benchmark — medians of ${esc(String(results.meta.rounds))} interleaved round(s)</text>`,
    `<text x="16" y="44" fill="#4a5568">${esc(String(results.meta.machine))} · ${esc(String(results.meta.date))}</text>`,
  ];
  panels.forEach((p, i) => {
    const x0 = (i % 2) * colW + 16;
    const y0 = rowTop[Math.floor(i / 2)];
    const max = Math.max(...p.bars.map((b) => b.value)) || 1;
    const barMax = colW - labelW - 110;
    parts.push(`<text x="${x0}" y="${y0 + 16}" font-weight="600">${esc(p.title)} <tspan fill="#718096" font-weight="400">(${esc(p.unit)}, ${p.better} is better)</tspan></text>`);
    p.bars.forEach((b, j) => {
      const by = y0 + 28 + j * rowH;
      const w = Math.max(1, (b.value / max) * barMax);
      parts.push(`<text x="${x0}" y="${by + 14}">${esc(b.label)}</text>`);
      parts.push(`<rect x="${x0 + labelW}" y="${by + 2}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${COLORS[b.label] ?? '#4a5568'}" rx="2"/>`);
      parts.push(`<text x="${(x0 + labelW + w + 6).toFixed(1)}" y="${by + 14}">${esc(fmt(b.value))}</text>`);
    });
  });
  parts.push(`<text x="16" y="${H - 10}" fill="#718096">iotc = IOTcommunicate (every reading persisted, acked after commit) · iotc-mqtt = the same through its MQTT door · mosquitto = MQTT QoS 0 · bare = ws relay, no auth/storage</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
