/** Reading Prometheus text in tests. */

/** The value of one sample, e.g. `iotc_connections{door="ws",side="device"}`; undefined when absent. */
export function sample(text: string, name: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    if (line.slice(0, at) === name) return Number(line.slice(at + 1));
  }
  return undefined;
}
