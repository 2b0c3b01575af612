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
  /** Watch `w` from now on (call right after dispatching it). */
  note(w: Watched): void;
  /** Stops the timer; noted requests are no longer looked at. */
  close(): void;
}

export function createAbortWatch(sweepMs: number): AbortWatch {
  let young: Watched[] = [];
  let old: Watched[] = [];
  let timer: NodeJS.Timeout | null = null;

  const sweep = (): void => {
    for (const w of old) {
      if (!w.waiting) continue;
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
      young.push(w);
      if (timer === null) {
        timer = setInterval(sweep, sweepMs);
        timer.unref();
      }
    },
    close() {
      if (timer !== null) clearInterval(timer);
      timer = null;
      young = [];
      old = [];
    },
  };
}
