/**
 * The string formats Kubernetes validates in CRD schemas
 * (apiextensions-apiserver `validation/formats.go`). Any other format, and
 * every format on a non-string type, is documentation only, as there.
 */
import { isIPv4, isIPv6 } from 'node:net';

const uuidRe = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const uuidVersionRe = (v: number): RegExp =>
  new RegExp(`^[0-9a-f]{8}-?[0-9a-f]{4}-?${v}[0-9a-f]{3}-?${v === 3 ? '[0-9a-f]' : '[89ab]'}[0-9a-f]{3}-?[0-9a-f]{12}$`, 'i');
const dateRe = /^(\d{4})-(\d{2})-(\d{2})$/;
// Go's strfmt accepts RFC 3339 and a few ISO 8601 relatives (no seconds, no zone).
const dateTimeRe = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2})?$/;
const hostnameRe = /^(?=.{1,253}$)[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$/;
const macRe = /^(?:[0-9a-fA-F]{2}(?:[:-][0-9a-fA-F]{2}){5}|[0-9a-fA-F]{2}(?:[:-][0-9a-fA-F]{2}){7}|[0-9a-fA-F]{2}(?:[:-][0-9a-fA-F]{2}){19}|(?:[0-9a-fA-F]{4}\.){2}[0-9a-fA-F]{4})$/;
const base64Re = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// Go's time.ParseDuration units, or Scala's "<n> <unit>" form.
const durationRe = /^(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$|^[-+]?\d+\s*(?:ns|us|ms|s|m|h|d|w|nanoseconds?|microseconds?|milliseconds?|seconds?|minutes?|hours?|days?|weeks?)$/;
const emailRe = /^[^\s@<>]+@[^\s@<>]+$/;

function validDate(y: string | undefined, m: string | undefined, d: string | undefined): boolean {
  const year = Number(y);
  const month = Number(m);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1) return false;
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return day <= days;
}

function isDateTime(s: string): boolean {
  const m = dateTimeRe.exec(s);
  if (m === null || !validDate(m[1], m[2], m[3])) return false;
  return Number(m[4]) < 24 && Number(m[5]) < 60 && Number(m[6] ?? '0') < 61;
}

function isCIDR(s: string): boolean {
  const slash = s.lastIndexOf('/');
  if (slash < 0) return false;
  const ip = s.slice(0, slash);
  const bits = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits)) return false;
  if (isIPv4(ip)) return Number(bits) <= 32;
  return isIPv6(ip) && Number(bits) <= 128;
}

function isURI(s: string): boolean {
  // Go's url.ParseRequestURI: an absolute URI or an absolute path.
  if (s.startsWith('/')) return true;
  try {
    return new URL(s).protocol !== '';
  } catch {
    return false;
  }
}

const digits = (s: string): string => s.replace(/[\s-]/g, '');

const checks: Record<string, (s: string) => boolean> = {
  bsonobjectid: (s) => /^[0-9a-fA-F]{24}$/.test(s),
  uri: isURI,
  email: (s) => emailRe.test(s),
  hostname: (s) => hostnameRe.test(s),
  ipv4: (s) => isIPv4(s),
  ipv6: (s) => isIPv6(s),
  cidr: isCIDR,
  mac: (s) => macRe.test(s),
  uuid: (s) => uuidRe.test(s),
  uuid3: (s) => uuidVersionRe(3).test(s),
  uuid4: (s) => uuidVersionRe(4).test(s),
  uuid5: (s) => uuidVersionRe(5).test(s),
  isbn: (s) => /^(?:\d{9}[\dX]|\d{13})$/.test(digits(s)),
  isbn10: (s) => /^\d{9}[\dX]$/.test(digits(s)),
  isbn13: (s) => /^\d{13}$/.test(digits(s)),
  creditcard: (s) => /^\d{12,19}$/.test(s.replace(/\D/g, '')),
  ssn: (s) => /^\d{3}[- ]?\d{2}[- ]?\d{4}$/.test(s),
  hexcolor: (s) => /^#?(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/.test(s),
  rgbcolor: (s) => /^rgb\(\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}\s*\)$/.test(s),
  byte: (s) => base64Re.test(s),
  password: () => true,
  date: (s) => {
    const m = dateRe.exec(s);
    return m !== null && validDate(m[1], m[2], m[3]);
  },
  duration: (s) => durationRe.test(s),
  datetime: isDateTime,
};

/**
 * The check for a format Kubernetes validates on strings, or undefined when
 * the format is not validated. Names are normalised as go-openapi does
 * (`date-time` = `datetime`).
 */
export function formatCheck(format: string): ((value: string) => boolean) | undefined {
  const name = format.replace(/-/g, '');
  return Object.hasOwn(checks, name) ? checks[name] : undefined;
}

/** Every validated format, by its normalised name. */
export function validatedFormats(): string[] {
  return Object.keys(checks);
}
