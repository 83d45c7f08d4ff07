/**
 * Guest memory: `domain.memory.guest`, else `resources.requests.memory`,
 * else `resources.limits.memory` (KubeVirt's `GetVirtualMemory`), as whole
 * MiB for `-m`.
 */
import { parseQuantity } from '../../api/validation/index.js';
import type { BuildContext } from './context.js';
import { warn } from './context.js';
import { invalidDomain } from './errors.js';

const mebibyte = 2 ** 20;
// Below this not even firmware runs; above it no x86 guest can address the RAM (QEMU's TCG CPUs have 40 physical address bits).
const minimumBytes = mebibyte;
const maximumBytes = 2 ** 40;

/** Bytes of a memory quantity as MiB, rounded up so the guest never gets less than asked. */
export function quantityToMebibytes(value: unknown, field: string): number {
  const bytes = parseQuantity(value);
  const shown = typeof value === 'string' ? value : JSON.stringify(value);
  if (bytes === undefined || !Number.isFinite(bytes)) throw invalidDomain(field, `"${shown}" is not a memory quantity: write it as e.g. "512Mi" or "2Gi"`);
  if (bytes < minimumBytes) throw invalidDomain(field, `${shown} is too little memory for a guest: give at least 1Mi (a Linux guest needs about 64Mi)`);
  if (bytes > maximumBytes) throw invalidDomain(field, `${shown} is more memory than a guest can address (at most 1Ti)`);
  return Math.ceil(bytes / mebibyte);
}

/** `-m <MiB>`. */
export function memoryArgs(ctx: BuildContext): string[] {
  const memory = ctx.domain.get('memory');
  const resources = ctx.domain.get('resources');
  const candidates = [memory.get('guest'), resources.get('requests').get('memory'), resources.get('limits').get('memory')];
  const source = candidates.find((node) => node.present);
  if (source === undefined) {
    throw invalidDomain(`${ctx.domain.path}.memory.guest`, 'the guest has no memory size: set domain.memory.guest or domain.resources.requests.memory');
  }
  const mib = quantityToMebibytes(source.value, source.path);
  if (memory.get('hugepages').present) warn(ctx, memory.get('hugepages'), 'hugepages are not supported yet; guest memory is ordinary anonymous memory');
  if (memory.get('maxGuest').present) warn(ctx, memory.get('maxGuest'), 'memory hotplug is not supported yet; the guest has a fixed size');
  return ['-m', String(mib)];
}
