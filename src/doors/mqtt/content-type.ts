import { blobType, isUtf8Text, sniffBlobType } from '../../core/blobs.js';

/** Types whose UTF-8 payload is a reading (JSON or plain text), as before content types were read. */
const TEXT_TYPE = /^\s*(text\/[^;]*|application\/json|application\/[^;/]*\+json)\s*(;.*)?$/i;

/**
 * What a publish to a sensor topic is: a text reading (null) or a binary chunk with its type.
 * - No content type (every MQTT 3.1.1 publish): bytes that are not UTF-8 are a chunk typed by their signature.
 * - An MQTT 5 Content Type is the chunk's type, checked as WebSocket and HTTP check theirs: one that is not a
 *   MIME type makes blobType throw E_VALIDATION, so the chunk is refused on every door alike.
 * - UTF-8 bytes with a type that is not text (application/octet-stream, image/svg+xml …) are a chunk too. With a
 *   text type, or a label that is not a MIME type at all (some clients write "json"), they stay a reading.
 * An empty payload is never a chunk: HTTP refuses an empty one as well.
 */
export function chunkTypeOf(payload: Buffer, contentType: string | undefined): string | null {
  const text = isUtf8Text(payload);
  if (contentType === undefined || contentType === '') return text ? null : sniffBlobType(payload);
  if (text && (payload.length === 0 || TEXT_TYPE.test(contentType))) return null;
  if (text) {
    try {
      return blobType(contentType);
    } catch {
      return null;
    }
  }
  return blobType(contentType);
}

/**
 * Content types waiting for their publish: more than are ever in flight at once, a bound only against a broker
 * that would drop publishes unseen. Inbound ones are small (the broker's input buffer holds many small publishes);
 * outbound ones, per topic, hold a chunk's bytes.
 */
const MAX_PENDING_INBOUND = 4096;
const MAX_PENDING_OUTBOUND = 64;

/**
 * An MQTT 5 connection's content types, kept beside the broker (which speaks 3.1.1 and has no properties): those
 * of the publishes it received, until it authorizes them, and those its publishes to the client are to carry.
 */
export class PendingContentTypes {
  /** The content type of each publish handed to the broker, in order: the broker authorizes them in that order. */
  private readonly inbound: { topic: string; contentType: string | undefined }[] = [];
  /** Chunks on their way out through the broker, by topic: the content type their MQTT 5 publish carries. */
  private readonly outbound = new Map<string, { payload: Buffer; contentType: string }[]>();

  /** A publish from the client, on its way to the broker. */
  received(topic: string, contentType: string | undefined): void {
    if (this.inbound.length >= MAX_PENDING_INBOUND) this.inbound.shift();
    this.inbound.push({ topic, contentType });
  }

  /**
   * The Content Type of the publish to `topic` the broker is authorizing. The broker hands publishes over in
   * the order they came; entries of any it dropped before (it then closes the connection) are skipped by their topic.
   */
  take(topic: string): string | undefined {
    for (let next = this.inbound.shift(); next; next = this.inbound.shift()) {
      if (next.topic === topic) return next.contentType;
    }
    return undefined;
  }

  /** The broker's publish of these bytes on `topic` is to go out with this Content Type. */
  expect(topic: string, payload: Buffer, contentType: string): void {
    const list = this.outbound.get(topic) ?? [];
    // A publish the broker never wrote (the connection closing) must not hold its bytes for good.
    if (list.length >= MAX_PENDING_OUTBOUND) list.shift();
    list.push({ payload, contentType });
    this.outbound.set(topic, list);
  }

  /** The content type expected for an outbound publish of these bytes, matched by topic and bytes. */
  sending(topic: string, payload: Buffer): string | undefined {
    if (this.outbound.size === 0) return undefined;
    const list = this.outbound.get(topic);
    if (!list) return undefined;
    const i = list.findIndex((e) => e.payload.length === payload.length && e.payload.equals(payload));
    if (i < 0) return undefined;
    const { contentType } = list[i];
    list.splice(i, 1);
    if (list.length === 0) this.outbound.delete(topic);
    return contentType;
  }
}
