import { Qlobber } from 'qlobber';

/** MQTT matching as the broker itself configures qlobber: `+` one level (which may be empty), `#` all the rest. */
const MQTT_MATCHING = { separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true };

export function hasWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#');
}

/**
 * Subscription filters indexed level by level (a trie), so finding those a topic matches costs the topic's
 * depth, however many filters there are. A linear scan made every delivered reading cost one comparison per
 * filter, and one connection holding thousands of filters stalled the whole hub.
 */
export class FilterIndex {
  private readonly trie = new Qlobber<string>(MQTT_MATCHING);
  private readonly qosByFilter = new Map<string, number>();

  constructor(filters: Iterable<[string, number]> = []) {
    for (const [filter, qos] of filters) this.set(filter, qos);
  }

  get size(): number {
    return this.qosByFilter.size;
  }

  has(filter: string): boolean {
    return this.qosByFilter.has(filter);
  }

  set(filter: string, qos: number): void {
    if (!this.qosByFilter.has(filter)) this.trie.add(filter, filter);
    this.qosByFilter.set(filter, qos);
  }

  delete(filter: string): void {
    if (this.qosByFilter.delete(filter)) this.trie.remove(filter, filter);
  }

  /** The highest QoS among the filters matching `topic`, or -1 when none does. */
  qosFor(topic: string): number {
    let qos = -1;
    for (const filter of this.trie.match(topic)) qos = Math.max(qos, this.qosByFilter.get(filter) ?? -1);
    return qos;
  }
}
