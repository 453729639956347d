/**
 * The arena shared by the fuzz suite (test/fuzz*.test.ts), the soak run (bench/soak.ts) and the attacks
 * (bench/attacks.ts): a real hub in its own process, accounts made over HTTP, a victim account writing
 * puts with ids, and /healthz watched from the outside.
 */
export { killAllHubs, startHub } from './server.js';
export type { Hub, HubOptions } from './server.js';
export { createDevice, jsonHeaders, request, signUp, webSession } from './http.js';
export type { Account, HttpAnswer } from './http.js';
export { HealthPoller, loopDelay, promSample } from './health.js';
export type { HealthStats, LoopDelay } from './health.js';
export { Victim, percentile } from './victim.js';
export type { VictimStats } from './victim.js';

/** The address attackers speak from, so per-address limits never mistake the victim (127.0.0.1) for them. */
export const ATTACKER_ADDRESS = '127.0.0.2';
export { MqttPeer, WsPeer } from './peers.js';
