/**
 * SUBSCRIBE and UNSUBSCRIBE on the MQTT door: which filters a connection is granted (its own device's topics or
 * a firmware's command topics, up to the cap), and what the broker may forward to it.
 */
import type { Client, Subscription } from 'aedes';
import { sendRetained } from './delivery.js';
import { closeSession } from './session.js';
import type { DoorContext, Session } from './session.js';
import { aliasFilterAllowed, filterAllowed, sensorFromTopic } from './topics.js';
import { REASON } from './reason-codes.js';

export function authorizeSubscribe(ctx: DoorContext, session: Session | undefined, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void): void {
  const device = session?.device;
  if (!session || !device) return done(new Error('not authenticated'));
  if (!filterAllowed(sub.topic, device.id) && !aliasFilterAllowed(sub.topic)) {
    ctx.log.info({ deviceId: device.id, side: session.side, remote: session.remote, topic: sub.topic.slice(0, 100) }, 'mqtt subscribe refused: filter outside devices/ID/ of this device');
    return done(null, null);
  }
  if (!session.filters.has(sub.topic) && session.filters.size >= ctx.config.mqttMaxSubscriptions) {
    session.overCap++;
    session.wire.refuseSubscription(sub.topic, REASON.quotaExceeded, `at most ${ctx.config.mqttMaxSubscriptions} subscriptions per connection (--mqtt-max-subscriptions)`);
    return done(null, null);
  }
  // Any QoS is granted; readings are published at QoS 1 (see delivery.ts), and MQTT delivers at the lower of the two.
  if (!session.filters.has(sub.topic) && aliasFilterAllowed(sub.topic)) session.firmwareFilters.push(sub.topic);
  session.filters.set(sub.topic, sub.qos);
  done(null, sub);
}

/** A SUBSCRIBE was answered: log filters refused over the cap (once per packet), then send the retained values. */
export function subscribed(ctx: DoorContext, session: Session | undefined, client: Client, subs: { topic: string; qos: number }[]): void {
  if (!session?.device) return;
  if (session.overCap > 0) {
    ctx.relay.countError('E_LIMIT');
    ctx.log.info(
      { deviceId: session.device.id, side: session.side, remote: session.remote, refused: session.overCap },
      `mqtt subscription refused: more than ${ctx.config.mqttMaxSubscriptions} filters on one connection (--mqtt-max-subscriptions / IOTC_MQTT_MAX_SUBSCRIPTIONS)`,
    );
    session.overCap = 0;
  }
  // Each granted filter costs a look-up of retained values: it counts against the message rate like a publish.
  const granted = subs.filter((s) => s.qos !== 128).length;
  if (granted > 0 && !session.bucket.take(granted)) {
    ctx.log.info({ deviceId: session.device.id, side: session.side, remote: session.remote }, 'closing mqtt connection: subscriptions over the rate limit (--rate-limit / IOTC_RATE_LIMIT)');
    ctx.relay.countError('E_RATE_LIMITED');
    closeSession(session, client, REASON.messageRateTooHigh, `at most ${ctx.config.rateLimit} messages (or filters subscribed) a second`);
    return;
  }
  void sendRetained(ctx, session, client, subs);
}

export function unsubscribed(session: Session | undefined, topics: string[]): void {
  if (!session) return;
  for (const topic of topics) session.filters.delete(topic);
  session.firmwareFilters = session.firmwareFilters.filter((f) => session.filters.has(f));
}

export function authorizeForward(session: Session | undefined, packet: { topic: string }): any {
  const device = session?.device;
  return device && (sensorFromTopic(packet.topic, device.id) !== null || aliasFilterAllowed(packet.topic)) ? packet : null;
}
