/**
 * Cell formatting shared by the built-in printers, reproducing what
 * Kubernetes' own printers write (`pkg/printers/internalversion`,
 * `apimachinery/pkg/labels`), so `kubectl get` looks the same against Vireo
 * as against a real cluster.
 */

/** `labels.FormatLabels`: `k=v` pairs sorted by key, or `<none>`. */
export function formatLabels(labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '<none>';
  return keys.map((k) => `${k}=${labels[k] ?? ''}`).join(',');
}

const accessModeAbbreviations: [string, string][] = [
  ['ReadWriteOnce', 'RWO'],
  ['ReadOnlyMany', 'ROX'],
  ['ReadWriteMany', 'RWX'],
  ['ReadWriteOncePod', 'RWOP'],
];

/** `helper.GetAccessModesAsString`: `RWO,ROX,RWX,RWOP` in that fixed order, duplicates dropped. */
export function formatAccessModes(modes: unknown[]): string {
  const present = new Set(modes.filter((m): m is string => typeof m === 'string'));
  return accessModeAbbreviations
    .filter(([mode]) => present.has(mode))
    .map(([, short]) => short)
    .join(',');
}

/** A timestamp as Kubernetes' default table prints `Created At`: UTC RFC 3339 with whole seconds. */
export function formatRFC3339(timestamp: string | undefined): string {
  if (timestamp === undefined) return '<unknown>';
  const parsed = Date.parse(timestamp);
  if (Number.isNaN(parsed)) return timestamp;
  return new Date(parsed).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
