/** What both entry points (Node and browser) export. */
export { Client } from './client.js';
export type { BlobChunk, CallHandler, CallOptions, CallState, ClientEvents, ClientOptions, Reading, ReconnectOptions, SocketFactory, SocketLike } from './client.js';
export { IotcError } from './errors.js';
export type { ClientErrorCode } from './errors.js';
export { socketUrl } from './url.js';
export type { Address, Side } from './url.js';
