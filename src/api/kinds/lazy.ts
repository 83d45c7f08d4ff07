/**
 * Lazily computed properties. Inlined OpenAPI schemas are large; a property
 * that computes its value on first read (and then becomes a plain value)
 * keeps start-up cheap and lets code that only needs names and columns run
 * without building any schema.
 */

/**
 * Defines `target[key]` as an enumerable property whose value is
 * `compute()`, run at most once, on first read. Spreading, `JSON.stringify`
 * and `structuredClone` all see an ordinary value.
 */
export function defineLazy<T extends object, K extends keyof T>(target: T, key: K, compute: () => T[K]): T {
  Object.defineProperty(target, key, {
    enumerable: true,
    configurable: true,
    get(): T[K] {
      const value = compute();
      Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
      return value;
    },
    set(value: T[K]): void {
      Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
    },
  });
  return target;
}
