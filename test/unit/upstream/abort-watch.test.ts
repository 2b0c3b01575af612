import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Exchange } from '../../../src/exchange.js';
import { createAbortWatch, type Watched } from '../../../src/upstream/abort-watch.js';

/** A watched request whose exchange counts how often its signal was asked for. */
function watched(controller: AbortController, waiting: () => boolean) {
  const seen = { signalReads: 0, told: 0 };
  const ex = {
    get signal() {
      seen.signalReads++;
      return controller.signal;
    },
  } as unknown as Exchange;
  const w: Watched = {
    ex,
    get waiting() {
      return waiting();
    },
    handleEvent() {
      seen.told++;
    },
  };
  return { w, seen };
}

/** Polls `done` every 10 ms for at most `ms`. */
async function within(ms: number, done: () => boolean): Promise<boolean> {
  for (let waited = 0; waited <= ms && !done(); waited += 10) await sleep(10);
  return done();
}

describe('abort watch: the client leaving is listened for only on requests still waiting', () => {
  it('a request answered before the second sweep never makes its signal', async () => {
    const watch = createAbortWatch(20);
    let waiting = true;
    const { w, seen } = watched(new AbortController(), () => waiting);
    watch.note(w);
    waiting = false; // the head arrived at once
    await sleep(80);
    watch.close();
    assert.equal(seen.signalReads, 0);
    assert.equal(seen.told, 0);
  });

  it('a request still waiting subscribes, and hears the client leave', async () => {
    const watch = createAbortWatch(20);
    const controller = new AbortController();
    const { w, seen } = watched(controller, () => true);
    watch.note(w);
    assert.ok(await within(1_000, () => seen.signalReads > 0), 'subscribed within a few sweeps');
    assert.equal(seen.told, 0);
    controller.abort();
    assert.equal(seen.told, 1);
    watch.close();
  });

  it('a client already gone when the sweep comes is told at once', async () => {
    const watch = createAbortWatch(20);
    const controller = new AbortController();
    controller.abort();
    const { w, seen } = watched(controller, () => true);
    watch.note(w);
    assert.ok(await within(1_000, () => seen.told === 1), 'told within a few sweeps');
    watch.close();
  });
});
