import { Qlobber } from 'qlobber';
import type { Relay } from '../../core/relay.js';
import type { Side, Store, StoredBlob, StoredReading } from '../../store/types.js';
import { sensorFromTopic, sensorTopic } from './topics.js';

/** MQTT matching as the broker itself configures qlobber: `+` one level (which may be empty), `#` all the rest. */
const MQTT_MATCHING = { separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true };

/** Topics whose match a FilterIndex keeps; beyond them it matches through the trie each time. */
const MATCHED_TOPICS = 256;

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
  /**
   * qosFor's answers by topic, forgotten whenever the filters change: a connection is handed the same few topics
   * again and again, and matching each through the trie was a twentieth of the door's time. Made on first use
   * (an idle connection holds none) and bounded, since call topics are new each time.
   */
  private matched: Map<string, number> | null = null;
  /** Counts the changes of the filters, so that what others derive from them knows when to work it out again. */
  generation = 0;

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
    this.matched = null;
    this.generation++;
  }

  delete(filter: string): void {
    if (this.qosByFilter.delete(filter)) this.trie.remove(filter, filter);
    this.matched = null;
    this.generation++;
  }

  /** The QoS granted to this very filter, or -1 when it is not held. */
  qosOf(filter: string): number {
    return this.qosByFilter.get(filter) ?? -1;
  }

  /** The highest QoS among the filters matching `topic`, or -1 when none does. */
  qosFor(topic: string): number {
    const known = this.matched?.get(topic);
    if (known !== undefined) return known;
    let qos = -1;
    for (const filter of this.trie.match(topic)) qos = Math.max(qos, this.qosByFilter.get(filter) ?? -1);
    this.matched ??= new Map();
    if (this.matched.size < MATCHED_TOPICS) this.matched.set(topic, qos);
    return qos;
  }
}

/**
 * The latest value of each sensor of `side` matching `filters`, for retained messages on SUBSCRIBE. Literal
 * filters are looked up by sensor name; only a wildcard reads every sensor of the device, each matched once
 * through an index of the filters. Matching every filter against every sensor froze the hub for a minute.
 */
export async function latestMatching(relay: Pick<Relay, 'gets' | 'sensors'>, deviceId: string, side: Side, filters: string[]): Promise<StoredReading[]> {
  if (filters.some(hasWildcard)) {
    const wanted = new FilterIndex(filters.map((f) => [f, 0]));
    return (await relay.sensors(deviceId, side)).filter((r) => wanted.qosFor(sensorTopic(r.deviceId, r.sensor)) >= 0);
  }
  const sensors = filters.map((f) => sensorFromTopic(f, deviceId)).filter((s): s is string => s !== null);
  const found = await Promise.all(sensors.map((sensor) => relay.gets(deviceId, sensor, side)));
  return found.filter((r): r is StoredReading => r !== null);
}

/** The newest chunk (with its bytes) of each sensor `side` wrote whose topic one of the filters matches. */
export async function latestBlobsMatching(store: Pick<Store, 'latestBlob' | 'latestBlobs' | 'getBlob'>, deviceId: string, side: Side, filters: string[]): Promise<StoredBlob[]> {
  let found: (StoredBlob | null)[];
  if (filters.some(hasWildcard)) {
    const wanted = new FilterIndex(filters.map((f) => [f, 0]));
    const infos = (await store.latestBlobs(deviceId, side)).filter((b) => wanted.qosFor(sensorTopic(deviceId, b.sensor)) >= 0);
    found = await Promise.all(infos.map((b) => store.getBlob(deviceId, b.sensor, b.seq)));
  } else {
    const sensors = filters.map((f) => sensorFromTopic(f, deviceId)).filter((s): s is string => s !== null);
    found = await Promise.all(sensors.map((sensor) => store.latestBlob(deviceId, sensor, side)));
  }
  return found.filter((b): b is StoredBlob => b !== null);
}
