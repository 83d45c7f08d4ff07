/**
 * Kubernetes resource quantities (`128Mi`, `1.5`, `500m`, `1e3`) as numbers,
 * for the comparisons admission makes (request vs limit, minimum sizes).
 */

const binarySuffixes: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const decimalSuffixes: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
const quantityRe = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$/;

/** The value of a quantity (a string, or a number as YAML may give it); undefined when it is not one. */
export function parseQuantity(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = quantityRe.exec(value.trim());
  if (match === null) return undefined;
  const mantissa = Number(match[1]);
  if (match[2] !== undefined) return mantissa * 10 ** Number(match[2].slice(1));
  const suffix = match[3] ?? '';
  const multiplier = binarySuffixes[suffix] ?? decimalSuffixes[suffix] ?? 1;
  return mantissa * multiplier;
}

/** A quantity for messages: the value as written. */
export function showQuantity(value: unknown): string {
  return typeof value === 'string' ? value : String(value);
}
