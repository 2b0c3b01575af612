/**
 * Which record types a lookup asks for and in what order its addresses come back. Pure.
 */
import type { FamilyOrder } from './options.js';

export type RecordType = 'A' | 'AAAA';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** What a caller may ask for: 0 for any family (the configured order), 4 or 6 for one. */
export type RequestedFamily = 0 | 4 | 6;

/**
 * The record types to query, in answer order. An explicit family from the caller narrows the configured
 * order; it never widens it (`ipv4only` with `family: 6` gives no types, and the lookup fails ENODATA).
 */
export function recordTypesFor(order: FamilyOrder, requested: RequestedFamily): readonly RecordType[] {
  let types: readonly RecordType[];
  switch (order) {
    case 'ipv4first':
      types = ['A', 'AAAA'];
      break;
    case 'ipv6first':
      types = ['AAAA', 'A'];
      break;
    case 'ipv4only':
      types = ['A'];
      break;
    case 'ipv6only':
      types = ['AAAA'];
      break;
    default: {
      const never: never = order;
      throw new Error(`unknown family order ${String(never)}`);
    }
  }
  if (requested === 0) return types;
  const wanted: RecordType = requested === 4 ? 'A' : 'AAAA';
  return types.filter((t) => t === wanted);
}

export function familyOf(type: RecordType): 4 | 6 {
  return type === 'A' ? 4 : 6;
}

/** Orders static or literal addresses by the configured order, dropping the families it excludes. */
export function orderAddresses(
  addresses: readonly ResolvedAddress[],
  order: FamilyOrder,
  requested: RequestedFamily,
): ResolvedAddress[] {
  const out: ResolvedAddress[] = [];
  for (const type of recordTypesFor(order, requested)) {
    const family = familyOf(type);
    for (const a of addresses) if (a.family === family) out.push(a);
  }
  return out;
}

/** Node's `family` lookup option: 0, 4, 6, 'IPv4' or 'IPv6' (anything else means any). */
export function requestedFamily(family: unknown): RequestedFamily {
  if (family === 4 || family === 'IPv4') return 4;
  if (family === 6 || family === 'IPv6') return 6;
  return 0;
}
