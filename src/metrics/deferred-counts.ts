/**
 * Per-request counter increments without prom-client on the hot path. prom-client hashes the label
 * object and validates it on every `inc`, even through a `labels()` child; a request touched
 * several counters that way. Here each label set is a cell found by a string key the caller builds
 * from its (bounded) label values, an increment is one addition, and the sums are handed to the
 * prom-client counter when it is read (its `collect` hook, which runs on every scrape and `get()`),
 * so what is exported is unchanged. A caller that meets the same label set on every request keeps
 * the cell itself (`cell()`) and adds to `pending` without building the key at all.
 */
import type { Counter, LabelValues } from 'prom-client';

/** One series: what was added since the last flush. */
export interface CountCell {
  pending: number;
}

interface Cell<L> extends CountCell {
  readonly labels: L;
}

export class DeferredCounts<T extends string> {
  readonly #cells = new Map<string, Cell<LabelValues<T>>>();

  /** The cell of the series `labels`, known by `key` (one key per label set); made on first use. */
  cell(key: string, labels: LabelValues<T>): CountCell {
    let cell = this.#cells.get(key);
    if (cell === undefined) {
      cell = { labels, pending: 0 };
      this.#cells.set(key, cell);
    }
    return cell;
  }

  /** Adds `value` (≥ 0) to the series `labels`, known by `key`. */
  add(key: string, labels: LabelValues<T>, value = 1): void {
    this.cell(key, labels).pending += value;
  }

  /** Moves the pending sums into `counter`: call it from the counter's `collect` hook. */
  flush(counter: Counter<T>): void {
    for (const cell of this.#cells.values()) {
      if (cell.pending === 0) continue;
      const value = cell.pending;
      cell.pending = 0;
      counter.inc(cell.labels, value);
    }
  }
}
