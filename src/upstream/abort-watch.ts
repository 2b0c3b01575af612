/**
 * Listens for "the client went away" only on origin requests that are still waiting for their
 * response head after a short while. Most answers come within a millisecond, and for those the
 * exchange's AbortSignal is never made: front/ makes it on first read (createExchange(), exchange.ts), and
 * making it, adding a listener and removing it again cost about 4% of a pass-through's CPU.
 *
 * Requests are noted in a young generation; every `sweepMs` the previous generation is looked at
 * and each request still waiting subscribes to its signal (already aborted: told at once), so a
 * client that leaves is noticed within two sweeps. Once the head has arrived, front/ destroying the
 * streamed body aborts the origin request instead. One timer per watch, running only while
 * requests are noted, unref'd.
 *
 * A request that stops waiting is forgotten at once (its slot emptied): held for two sweeps, every
 * answered request kept its exchange, with the client's request and response, alive for up to
 * 100 ms, so each young-generation GC copied hundreds of finished exchanges.
 */
import type { Exchange } from '../exchange.js';

export interface Watched {
  readonly ex: Exchange;
  /** Still waiting for the response head (nothing else will tell it the client left). */
  readonly waiting: boolean;
  /** Called as an `abort` listener of `ex.signal` (or at once when that is already aborted). */
  handleEvent(): void;
}

export interface AbortWatch {
  /** Watch `w` from now on (call right after dispatching it); returns its slot, for forget(). */
  note(w: Watched): number;
  /** Stop watching `w` (it no longer waits): `slot` is what note() returned. */
  forget(w: Watched, slot: number): void;
  /** Stops the timer; noted requests are no longer looked at. */
  close(): void;
}

export function createAbortWatch(sweepMs: number): AbortWatch {
  let young: (Watched | null)[] = [];
  let old: (Watched | null)[] = [];
  let timer: NodeJS.Timeout | null = null;

  const sweep = (): void => {
    for (const w of old) {
      if (w === null || !w.waiting) continue;
      const signal = w.ex.signal;
      if (signal.aborted) w.handleEvent();
      else signal.addEventListener('abort', w, { once: true });
    }
    old = young;
    young = [];
    if (old.length === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  };

  return {
    note(w) {
      const slot = young.push(w) - 1;
      if (timer === null) {
        timer = setInterval(sweep, sweepMs);
        timer.unref();
      }
      return slot;
    },
    forget(w, slot) {
      // A generation keeps its slots when it ages (young becomes old), so the slot finds it in either.
      if (young[slot] === w) young[slot] = null;
      else if (old[slot] === w) old[slot] = null;
    },
    close() {
      if (timer !== null) clearInterval(timer);
      timer = null;
      young = [];
      old = [];
    },
  };
}
