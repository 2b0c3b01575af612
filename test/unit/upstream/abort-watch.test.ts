import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Exchange } from '../../../src/exchange.js';
import { createAbortWatch, type Watched } from '../../../src/upstream/abort-watch.js';

/** A watched request whose exchange counts how often its signal was asked for. */
function watched(controller: AbortController, waiting: () => boolean) {
  const seen = { signalReads: 0, told: 0, waitingReads: 0 };
  const ex = {
    get signal() {
      seen.signalReads++;
      return controller.signal;
    },
  } as unknown as Exchange;
  const w: Watched = {
    ex,
    get waiting() {
      seen.waitingReads++;
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

  it('a request forgotten when its head arrives is never looked at again (nor kept)', async () => {
    const watch = createAbortWatch(20);
    const controller = new AbortController();
    const { w, seen } = watched(controller, () => true);
    // Another request noted before and after it: slots stay right when generations age.
    const before = watched(new AbortController(), () => true);
    watch.note(before.w);
    const slot = watch.note(w);
    watch.forget(w, slot);
    const after = watched(new AbortController(), () => true);
    watch.forget(after.w, watch.note(after.w));
    assert.ok(await within(1_000, () => before.seen.signalReads > 0), 'the other request is still watched');
    await sleep(60);
    controller.abort();
    watch.close();
    assert.equal(seen.waitingReads, 0);
    assert.equal(seen.signalReads, 0);
    assert.equal(seen.told, 0);
    assert.equal(after.seen.signalReads, 0);
  });

  it('a request forgotten after its generation aged is not looked at either', async () => {
    const watch = createAbortWatch(20);
    const { w, seen } = watched(new AbortController(), () => true);
    // Noted while a sweep runs (read by it from the old generation), w ages with the young
    // generation at the end of that sweep, and is forgotten right after: from the old one.
    let noted = false;
    const first: Watched = {
      ex: w.ex,
      get waiting() {
        if (!noted) {
          noted = true;
          const slot = watch.note(w);
          queueMicrotask(() => watch.forget(w, slot));
        }
        return false;
      },
      handleEvent() {},
    };
    watch.note(first);
    assert.ok(await within(1_000, () => noted), 'the first request was swept');
    await sleep(80);
    watch.close();
    assert.equal(seen.waitingReads, 0);
    assert.equal(seen.signalReads, 0);
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
