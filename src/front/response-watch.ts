/**
 * The end of one response, watched through a single 'close' listener. front/ needs two things from
 * that event: "the client went away" for the Exchange (`createExchange()`, see exchange.ts), and
 * "the response is over" to tell the observers how it ended. One listener serves both: a second
 * 'close' listener turned the emitter's slot into an array that every emit copies, which a cache
 * hit felt.
 *
 * The AbortSignal is made only when something asks for it: most exchanges (cache hits, fast origin
 * answers) never read it, and making an AbortSignal costs about as much as the rest of building
 * the exchange.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Exchange, InterimSource, SignalSource } from '../exchange.js';
import { interimRelay } from './interim.js';

export type CloseHandler = (finished: boolean) => void;

export class ResponseWatch implements SignalSource, InterimSource {
  #controller: AbortController | null = null;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  #gone = false;
  #closed = false;
  #finished = false;
  #onClose: CloseHandler | null = null;

  constructor(req: IncomingMessage, res: ServerResponse) {
    this.#req = req;
    this.#res = res;
  }

  /** The exchange's interim relay (interim.ts), made when upstream/ first needs it. */
  get interim(): Exchange['interim'] {
    return interimRelay(this.#req, this.#res);
  }

  /**
   * Aborted when the client goes away: an AbortController made on first use. When the client
   * left first, the signal handed out later is already aborted, as it would have been.
   */
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

  /** The response's 'close' event: `finished` when all of it was written. A response that was not, aborts. */
  closed(finished: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#finished = finished;
    if (!finished) this.abort();
    const handler = this.#onClose;
    this.#onClose = null;
    handler?.(finished);
  }

  /** Calls `handler` once when the response closes; at once when it already has. One handler at a time. */
  whenClosed(handler: CloseHandler): void {
    if (this.#closed) handler(this.#finished);
    else this.#onClose = handler;
  }
}
