/** The WebSocket door's own text frames, read back by `ws`'s receiver as a client would read them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import { textFrame, textFrames } from '../src/doors/ws-frames.js';

/** `ws`'s frame parser: exported by the package, though not by its type declarations. */
const { Receiver } = createRequire(import.meta.url)('ws') as { Receiver: new (opts: { isServer: boolean; maxPayload: number }) => Writable };

/** A text of exactly `bytes` UTF-8 bytes, with two- and four-byte characters in it where it has room. */
function textOf(bytes: number): string {
  const wide = bytes >= 6 ? 'é😀' : '';
  return wide + 'a'.repeat(bytes - Buffer.byteLength(wide));
}

test('text frames of every header size decode to the same text, one message each, in order, alone or in one buffer', async () => {
  // Either side of each length encoding: 7 bits (≤ 125), 16 bits (≤ 65 535), 64 bits.
  const lengths = [0, 1, 125, 126, 127, 65_535, 65_536, 70_000, 1_048_576];
  const receiver = new Receiver({ isServer: false, maxPayload: 0 });
  const got: string[] = [];
  receiver.on('message', (data: Buffer, isBinary: boolean) => {
    assert.equal(isBinary, false);
    got.push(data.toString());
  });
  const errors: Error[] = [];
  receiver.on('error', (err: Error) => errors.push(err));
  const texts = lengths.map(textOf);
  for (const [i, text] of texts.entries()) {
    const frame = textFrame(text);
    assert.equal(Buffer.byteLength(text), lengths[i]);
    assert.equal(frame.length, lengths[i] + (lengths[i] < 126 ? 2 : lengths[i] < 65_536 ? 4 : 10), `header size for ${lengths[i]} bytes`);
    // Fed in two pieces, split inside the header, as TCP may deliver it.
    receiver.write(frame.subarray(0, 1));
    receiver.write(frame.subarray(1));
  }
  // A turn's frames in one buffer, fed in three pieces cut anywhere.
  const all = textFrames(texts);
  assert.equal(all.length, texts.reduce((sum, t) => sum + textFrame(t).length, 0));
  receiver.write(all.subarray(0, 3));
  receiver.write(all.subarray(3, 70_000));
  receiver.write(all.subarray(70_000));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(errors, []);
  assert.equal(got.length, texts.length * 2);
  for (const [i, text] of [...texts, ...texts].entries()) assert.ok(got[i] === text, `the ${lengths[i % texts.length]}-byte text came back whole (${i < texts.length ? 'alone' : 'with the others'})`);
});
