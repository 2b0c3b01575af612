import type { Exchange } from '../exchange.js';

/** The route label of an exchange: its route name, `forward` for the allow list, else `none`. */
export function routeLabel(ex: Exchange): string {
  return ex.route?.name ?? (ex.admission?.decision === 'admit' ? 'forward' : 'none');
}
