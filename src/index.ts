/**
 * The hub as a library, for embedding it in another Node.js program:
 * `startServer(loadConfig({}, process.env), createLogger('info'))`. The client is `iotcommunicate/client`.
 */
export { startServer } from './server.js';
export type { RunningServer } from './server.js';
export { loadConfig } from './config.js';
export type { Config } from './config.js';
export { createLogger } from './log.js';
