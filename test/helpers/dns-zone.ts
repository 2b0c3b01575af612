/**
 * A tiny authoritative zone for tests, shared by the UDP/TCP nameserver (dns-server.ts) and the DoH
 * endpoint (doh-server.ts). It counts every question it is asked and can be made slow, failing
 * (SERVFAIL), NXDOMAIN, silent (blackholed) or truncating (UDP answers with TC set, full answer over TCP).
 */
import dnsPacket, { type Answer, type DecodedPacket, type Packet } from 'dns-packet';

export type ZoneBehaviour = 'answer' | 'nxdomain' | 'servfail' | 'silent' | 'truncate';

export interface ZoneRecord {
  A?: string[];
  AAAA?: string[];
  /** Seconds. Default 60. */
  ttl?: number;
  /** Overrides the zone's behaviour for this name. */
  behaviour?: ZoneBehaviour;
}

export type Transport = 'udp' | 'tcp' | 'doh';

const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3 } as const;

export class DnsZone {
  readonly records = new Map<string, ZoneRecord>();
  /** Applies to every name without its own `behaviour`. */
  behaviour: ZoneBehaviour = 'answer';
  /** Delay before each reply. */
  delayMs = 0;
  /** Questions received, by transport. */
  readonly received: Record<Transport, number> = { udp: 0, tcp: 0, doh: 0 };
  readonly #counts = new Map<string, number>();

  constructor(records: Record<string, ZoneRecord> = {}) {
    for (const [name, record] of Object.entries(records)) this.records.set(name.toLowerCase(), record);
  }

  set(name: string, record: ZoneRecord): void {
    this.records.set(name.toLowerCase(), record);
  }

  /** Questions received for `name` (and `type`, if given), over every transport. */
  count(name: string, type?: 'A' | 'AAAA'): number {
    const n = name.toLowerCase();
    if (type) return this.#counts.get(`${type} ${n}`) ?? 0;
    return (this.#counts.get(`A ${n}`) ?? 0) + (this.#counts.get(`AAAA ${n}`) ?? 0);
  }

  get total(): number {
    return this.received.udp + this.received.tcp + this.received.doh;
  }

  /** The reply to a query message, or null to stay silent. Counts the question. */
  reply(query: DecodedPacket, transport: Transport): Buffer | null {
    const question = query.questions?.[0];
    this.received[transport]++;
    if (!question) return null;
    const name = question.name.toLowerCase();
    this.#counts.set(`${question.type} ${name}`, (this.#counts.get(`${question.type} ${name}`) ?? 0) + 1);
    const record = this.records.get(name);
    const behaviour = record?.behaviour ?? this.behaviour;
    const base: Packet = {
      type: 'response',
      id: query.id ?? 0,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
      questions: query.questions ?? [],
    };
    switch (behaviour) {
      case 'silent':
        return null;
      case 'servfail':
        return dnsPacket.encode({ ...base, flags: (base.flags ?? 0) | RCODE.SERVFAIL });
      case 'nxdomain':
        return dnsPacket.encode({ ...base, flags: (base.flags ?? 0) | RCODE.NXDOMAIN });
      case 'truncate':
        if (transport === 'udp') {
          return dnsPacket.encode({ ...base, flags: (base.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE });
        }
        break;
      case 'answer':
        break;
    }
    if (!record) return dnsPacket.encode({ ...base, flags: (base.flags ?? 0) | RCODE.NXDOMAIN });
    const ttl = record.ttl ?? 60;
    const answers: Answer[] = [];
    if (question.type === 'A') {
      for (const data of record.A ?? [])
        answers.push({ type: 'A', name: question.name, ttl, class: 'IN', data });
    } else if (question.type === 'AAAA') {
      for (const data of record.AAAA ?? []) {
        answers.push({ type: 'AAAA', name: question.name, ttl, class: 'IN', data });
      }
    }
    // No record of that type: NOERROR with no answers, i.e. NODATA.
    return dnsPacket.encode({ ...base, answers });
  }
}
