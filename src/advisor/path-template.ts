/**
 * Path templates for the policy advisor: a path with its ID-like segments collapsed to `{}`, so
 * `/repos/1296269/42/issues` and `/repos/9/7/issues` are one template, `/repos/{}/{}/issues`. Pure.
 *
 * ID-like: all digits; a UUID; hex of 8 or more characters with a digit; a token of 16 or more
 * characters of letters, digits, `_`, `-`, `.` or `~` that has a digit (Stripe's `cus_9s6XKzkNRiz8i3`,
 * base64url keys). Names without digits (`octocat`, `hello-world`) stay as they are.
 */

const DIGITS = /^\d+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX = /^[0-9a-f]{8,}$/i;
const TOKEN = /^[A-Za-z0-9_.~-]{16,}$/;
const HAS_DIGIT = /\d/;

/** Whether one path segment (as in the URL, not decoded) looks like an identifier. */
export function idLike(segment: string): boolean {
  if (segment === '') return false;
  if (DIGITS.test(segment)) return true;
  if (!HAS_DIGIT.test(segment)) return false;
  return UUID.test(segment) || HEX.test(segment) || TOKEN.test(segment) || segment.includes('%');
}

/** The template of a URL path (no query): ID-like segments become `{}`. */
export function pathTemplate(pathname: string): string {
  const parts = pathname.split('/');
  let changed = false;
  for (let i = 1; i < parts.length; i++) {
    if (idLike(parts[i] as string)) {
      parts[i] = '{}';
      changed = true;
    }
  }
  return changed ? parts.join('/') : pathname;
}

/** The literal part of a template before its first `{}` (a path prefix a policy can name). */
export function literalPrefix(template: string): string {
  const at = template.indexOf('{}');
  return at < 0 ? template : template.slice(0, at);
}

/** The template as a refresh-ahead pattern, where `*` matches any characters. */
export function templatePattern(template: string): string {
  return template.replaceAll('{}', '*');
}
