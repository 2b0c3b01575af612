/**
 * Nameserver addresses written `host[:port]`, as in docker's `--dns` flag: `1.1.1.1`, `10.0.0.2:5353`,
 * `[2606:4700::1111]:53`, a bare `::1`, or (DoH only) a host name such as `dns.example:8443`.
 * The syntax of `dns.servers` and `dns.doh.servers` (dns-schema.ts checks it; dns/resolver.ts
 * parses and formats it). Pure: parsing and formatting, no I/O.
 */
import { isIP } from 'node:net';

export interface ServerAddress {
  /** IP literal without brackets, or a host name. */
  readonly host: string;
  /** null when the text gave none (the resolver's default applies: 53 for udp, 443/80 for DoH). */
  readonly port: number | null;
  /** 4 or 6 for an IP literal, 0 for a host name. */
  readonly family: 0 | 4 | 6;
}

const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/** A valid DNS host name (letters, digits, `-`, `_`; labels of 1..63; 253 in all; one trailing dot allowed). */
export function isHostName(s: string): boolean {
  return HOST_NAME.test(s);
}

/**
 * Parses `host[:port]`. Returns a string that says what is wrong instead of throwing, so the schema can
 * put it in its message. `allowHostName` is false for udp nameservers, which must be IP literals.
 */
export function parseServerAddress(text: string, allowHostName: boolean): ServerAddress | string {
  let host: string;
  let portText: string | null = null;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return 'missing "]" after the IPv6 address';
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return 'expected ":PORT" after "]"';
      portText = rest.slice(1);
    }
    if (isIP(host) !== 6) return `"${host}" is not an IPv6 address`;
  } else if (isIP(text) === 6) {
    host = text;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon >= 0) {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
    } else {
      host = text;
    }
    if (host.includes(':')) return 'write an IPv6 address with a port as [ADDRESS]:PORT';
  }
  let port: number | null = null;
  if (portText !== null) {
    if (!/^\d{1,5}$/.test(portText)) return `port "${portText}" is not a number`;
    port = Number(portText);
    if (port < 1 || port > 65535) return `port ${port} is not between 1 and 65535`;
  }
  const family = isIP(host);
  if (family === 4 || family === 6) return { host, port, family };
  if (!allowHostName) return `"${host}" is not an IP address (nameservers must be IP literals)`;
  if (!isHostName(host)) return `"${host}" is not an IP address or host name`;
  return { host, port, family: 0 };
}

/** The form Node's `Resolver#setServers` takes: `1.2.3.4`, `1.2.3.4:53`, `::1`, `[::1]:53`. */
export function formatNameserver(server: ServerAddress): string {
  if (server.port === null) return server.host;
  return server.family === 6 ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

/** A URL authority: `host`, `host:port`, `[v6]`, `[v6]:port`. */
export function formatAuthority(server: ServerAddress): string {
  const host = server.family === 6 ? `[${server.host}]` : server.host;
  return server.port === null ? host : `${host}:${server.port}`;
}
