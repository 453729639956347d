/** The event-loop delay monitor behind iotc_eventloop_delay_seconds: fine while traffic flows, coarse when quiet. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoopDelayMonitor } from '../src/loop-delay.js';
import { sleep, waitFor } from './helpers.js';

/** Holds the event loop for `ms`, as a long synchronous task in the hub would. */
function pause(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

test('the monitor times at the busy resolution while its activity count moves, and at the quiet one after it stays still', async () => {
  let activity = 0;
  const monitor = new LoopDelayMonitor(() => activity, { checkMs: 20, quietAfterMs: 200 });
  try {
    assert.equal(monitor.measuringFinely, false, 'a hub starts quiet');
    await sleep(100);
    assert.equal(monitor.measuringFinely, false, 'nothing moved: still quiet');
    activity++;
    await waitFor(() => monitor.measuringFinely, 2000, 'the busy resolution after activity');
    // Activity that keeps moving keeps it busy past quietAfterMs.
    for (let i = 0; i < 15; i++) {
      activity++;
      await sleep(20);
    }
    assert.equal(monitor.measuringFinely, true);
    await waitFor(() => !monitor.measuringFinely, 2000, 'the quiet resolution once activity stopped');
  } finally {
    monitor.stop();
  }
});

test('a pause shows in the next read at either resolution, and each read starts afresh', async () => {
  let activity = 0;
  const monitor = new LoopDelayMonitor(() => activity, { checkMs: 20, quietAfterMs: 60_000 });
  try {
    // Quiet (10 ms resolution): a 120 ms pause reads at least 110 ms.
    await sleep(30);
    pause(120);
    await sleep(30);
    const quiet = monitor.read();
    assert.ok(quiet.max >= 0.11, `quiet: the pause is the longest (max ${quiet.max})`);
    assert.ok(monitor.read().max < 0.11, 'the read before reset it');

    activity++;
    await waitFor(() => monitor.measuringFinely, 2000, 'the busy resolution');
    monitor.read();
    await sleep(30);
    pause(120);
    await sleep(30);
    const busy = monitor.read();
    assert.ok(busy.max >= 0.118, `busy (1 ms resolution): the pause reads within a millisecond (max ${busy.max})`);
    assert.ok(busy.p50 < 0.05, `the quantiles are of the fine samples, most of them short (p50 ${busy.p50})`);
  } finally {
    monitor.stop();
  }
});

test('a pause that begins right after a read, before the timer ticks again, is counted in the next read', async () => {
  for (const busy of [false, true]) {
    let activity = 0;
    const monitor = new LoopDelayMonitor(() => activity, { checkMs: 20, quietAfterMs: 60_000 });
    try {
      if (busy) {
        activity++;
        await waitFor(() => monitor.measuringFinely, 2000, 'the busy resolution');
      }
      await sleep(35);
      monitor.read();
      pause(120);
      await sleep(5);
      const after = monitor.read();
      assert.ok(after.max >= 0.118, `${busy ? 'busy' : 'quiet'}: the pause straddling the read is counted (max ${after.max})`);
      await sleep(30);
      assert.ok(monitor.read().max < 0.1, 'and only once');
    } finally {
      monitor.stop();
    }
  }
});
