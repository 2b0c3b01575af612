/**
 * HTTP-date parsing (RFC 9110 §5.6.7). Pure. Unlike `Date.parse`, only the three formats HTTP
 * allows are accepted; anything else is invalid (`undefined`), which callers treat as RFC 9111
 * asks (an invalid Expires is in the past, an invalid Date is ignored). Names of days, months and
 * `GMT` are matched case-insensitively, as RFC 9111 §4.2 asks of cache recipients.
 */
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAY = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTH = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`, 'i');
const RFC850 = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`, 'i');
const ASCTIME = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`, 'i');

function build(y: number, mon: string, d: number, h: number, mi: number, s: number): number | undefined {
  const m = MONTHS.indexOf(mon.charAt(0).toUpperCase() + mon.slice(1).toLowerCase());
  if (d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return undefined;
  const t = Date.UTC(y, m, d, h, mi, Math.min(s, 59));
  // Reject dates like 31 Feb that Date.UTC silently rolls over.
  if (new Date(t).getUTCDate() !== d) return undefined;
  return t;
}

/** Epoch milliseconds, or `undefined` when the value is not a valid HTTP-date. */
export function parseHttpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  let m = IMF_FIXDATE.exec(v);
  if (m) return build(Number(m[3]), m[2]!, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  m = RFC850.exec(v);
  if (m) {
    // Two-digit years more than 50 years in the future are in the past century (RFC 9110 §5.6.7);
    // we read them against 2000, which is right for any date this proxy will see.
    const yy = Number(m[3]);
    const y = yy < 70 ? 2000 + yy : 1900 + yy;
    return build(y, m[2]!, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  m = ASCTIME.exec(v);
  if (m) return build(Number(m[6]), m[1]!, Number(m[2]!.trim()), Number(m[3]), Number(m[4]), Number(m[5]));
  return undefined;
}

export function formatHttpDate(ms: number): string {
  return new Date(ms).toUTCString();
}
