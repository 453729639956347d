/** A connection's subscription filters (src/doors/mqtt/subscriptions.ts), which keep the answers they gave per topic. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FilterIndex } from '../src/doors/mqtt/subscriptions.js';

test('a filter index answers anew after every subscription change, and matches MQTT wildcards', () => {
  const index = new FilterIndex();
  const topic = 'devices/D/temp';
  assert.equal(index.qosFor(topic), -1);
  index.set('devices/D/+', 0);
  assert.equal(index.qosFor(topic), 0);
  assert.equal(index.qosFor(topic), 0, 'asked again');
  index.set('devices/D/temp', 1);
  assert.equal(index.qosFor(topic), 1, 'the highest QoS of the matching filters');
  index.set('devices/D/temp', 0);
  assert.equal(index.qosFor(topic), 0, 'a filter subscribed again with another QoS');
  index.delete('devices/D/+');
  index.delete('devices/D/temp');
  assert.equal(index.qosFor(topic), -1, 'unsubscribed');
  index.set('devices/#', 1);
  assert.equal(index.qosFor(topic), 1);
  assert.equal(index.qosFor('devices'), 1, '# matches its parent level too');
  assert.equal(index.qosFor('other/D/temp'), -1);
});

test('a filter index gives the same answers for more topics than it keeps', () => {
  const index = new FilterIndex([['devices/D/+', 1]]);
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 1000; i++) {
      assert.equal(index.qosFor(`devices/D/s${i}`), 1);
      assert.equal(index.qosFor(`devices/E/s${i}`), -1);
    }
  }
  index.delete('devices/D/+');
  assert.equal(index.qosFor('devices/D/s1'), -1);
  assert.equal(index.qosFor('devices/D/s999'), -1);
});
