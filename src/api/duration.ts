/**
 * Ages as kubectl shows them: a port of
 * `k8s.io/apimachinery/pkg/util/duration.HumanDuration`, which gives two or
 * three significant figures (`90s`, `5m30s`, `3h10m`, `4d2h`, `2y30d`).
 */

const second = 1000;
const minute = 60 * second;
const hour = 60 * minute;

/** `HumanDuration` for a duration in milliseconds. */
export function humanDuration(ms: number): string {
  // Up to two seconds in the future still counts as now: clocks drift.
  const seconds = Math.trunc(ms / second);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.trunc(ms / minute);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.trunc(ms / hour);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  const days = Math.trunc(hours / 24);
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${days}d` : `${days}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.trunc(days / 365);
  if (hours < 24 * 365 * 8) {
    const dy = days % 365;
    return dy === 0 ? `${years}y` : `${years}y${dy}d`;
  }
  return `${years}y`;
}

const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The age cell of a timestamp (`ConvertToHumanReadableDateType` after
 * `metav1.Time` parsing): `<unknown>` for an empty one, `<invalid>` for
 * one that is not RFC 3339.
 */
export function ageOf(timestamp: string, now: Date): string {
  if (timestamp === '' || timestamp === 'null') return '<unknown>';
  if (!rfc3339.test(timestamp)) return '<invalid>';
  const at = Date.parse(timestamp);
  if (Number.isNaN(at)) return '<invalid>';
  return humanDuration(now.getTime() - at);
}

const goDurationUnits: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Milliseconds of a Go `time.Duration` string as `metav1.Duration` holds it
 * ("5m", "1h30m", "2.5s", "0s"); undefined when it is not one.
 */
export function parseGoDuration(text: string): number | undefined {
  const match = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.exec(text);
  if (text === '0') return 0;
  if (match === null) return undefined;
  let total = 0;
  for (const [, value, unit] of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) total += Number(value) * (goDurationUnits[unit ?? ''] ?? 0);
  return match[1] === '-' ? -total : total;
}
