/**
 * A response head in HTTP/1.1 wire form, for sockets that no ServerResponse owns: a refused
 * CONNECT or Upgrade, a malformed request, an origin's answer to an Upgrade it declined, a 101.
 * A field value holding CR or LF is left out (it would split the head).
 */
import { type OutgoingHttpHeaders, STATUS_CODES } from 'node:http';

export function rawHead(
  status: number,
  statusText: string | undefined,
  headers: OutgoingHttpHeaders,
): Buffer {
  let head = `HTTP/1.1 ${status} ${statusText ?? STATUS_CODES[status] ?? ''}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      const text = String(v);
      if (/[\r\n]/.test(text)) continue;
      head += `${name}: ${text}\r\n`;
    }
  }
  return Buffer.from(`${head}\r\n`, 'latin1');
}
