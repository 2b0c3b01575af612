/**
 * "The client went away" for the Exchange front/ makes per request (an `ExchangeRecord`, see
 * exchange.ts): the AbortSignal is made only when something asks for it. Most exchanges (cache
 * hits, fast origin answers) never read it, and making an AbortSignal cost about as much as the
 * rest of building the exchange.
 */
import type { SignalSource } from '../exchange.js';

/**
 * "The client went away": an AbortController made on first use. When `abort()` came first, the
 * signal handed out later is already aborted, as it would have been.
 */
export class ClientGone implements SignalSource {
  #controller: AbortController | null = null;
  #gone = false;

  get signal(): AbortSignal {
    if (this.#controller === null) {
      this.#controller = new AbortController();
      if (this.#gone) this.#controller.abort();
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#gone;
  }

  abort(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#controller?.abort();
  }
}
