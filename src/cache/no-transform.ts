/**
 * `Cache-Control: no-transform` (RFC 9111 §5.2.1.6 request, §5.2.2.6 response; RFC 9110 §7.7):
 * an intermediary must not transform the content. For this cache that means a coded response
 * marked `no-transform` is never decoded for a client that does not accept its coding (and a
 * request marked so never gets our Accept-Encoding, stage.ts workingHeaders). Such a client gets
 * what the origin sends for its own request instead, fetched in the same exchange (stage.ts
 * `untransformed`). Pure.
 */
import { type FieldValue, joinField } from './cache-control.js';

const NO_TRANSFORM = /(^|[\s,])no-transform\s*(,|$)/i;

/** Whether a Cache-Control field value carries `no-transform`. */
export function hasNoTransform(cacheControl: FieldValue): boolean {
  return cacheControl !== undefined && NO_TRANSFORM.test(joinField(cacheControl));
}
