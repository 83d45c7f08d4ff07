/**
 * QEMU's `key=value,key=value` option syntax. A comma inside a value must be
 * doubled, or QEMU would read the rest as another key; paths and disk
 * serials come from users, so every value goes through here.
 */

/** A property value; `undefined` leaves the key out, booleans become on/off. */
export type OptionValue = string | number | boolean | undefined;

function escape(value: string): string {
  return value.replaceAll(',', ',,');
}

function render(value: string | number | boolean): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  return escape(String(value));
}

/**
 * `head,key=value,…` with keys in insertion order; `head` (a driver or
 * backend name, or a `type=` free option list when undefined) comes first.
 */
export function options(head: string | undefined, props: Record<string, OptionValue>): string {
  const parts: string[] = head === undefined ? [] : [escape(head)];
  for (const [key, value] of Object.entries(props)) {
    if (value !== undefined) parts.push(`${key}=${render(value)}`);
  }
  return parts.join(',');
}
