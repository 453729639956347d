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
