/**
 * CNI spec versions: which ones the runtime speaks (the result shapes of
 * 0.3.0 to 1.0.0, which share `interfaces`/`ips`/`routes`/`dns`), and how
 * two versions compare.
 */

/** The versions a config may name; 0.1.0 and 0.2.0 had another result shape and are refused. */
export const supportedVersions: readonly string[] = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'];

/** True when version `a` is `b` or later (`major.minor.patch`, numerically). */
export function versionAtLeast(a: string, b: string): boolean {
  const left = parts(a);
  const right = parts(b);
  for (let i = 0; i < 3; i++) {
    const l = left[i] ?? 0;
    const r = right[i] ?? 0;
    if (l !== r) return l > r;
  }
  return true;
}

function parts(version: string): number[] {
  return version.split('.').map((part) => Number.parseInt(part, 10) || 0);
}
