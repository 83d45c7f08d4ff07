/**
 * The JSON patches a clone's restore applies to the new VM, as KubeVirt's
 * `generatePatches` makes them: each interface gets the MAC address
 * `newMacAddresses` names for it, or none (so a new one is generated, as
 * KubeMacPool would); the SMBIOS serial becomes `newSMBiosSerial`, or none;
 * the firmware UUID goes (the VM controller derives one from the new name);
 * labels and annotations the filters do not keep are removed; the user's
 * own `patches` come last.
 *
 * KubeVirt writes `replace` with an empty string; Vireo removes the field,
 * which means the same to the guest and is valid JSON Patch whether or not
 * the field was set.
 */
import type { KObject } from '../../api/object.js';
import { isPlainObject } from '../../api/object.js';
import { recordAt, recordsAt, stringAt, stringMapAt } from '../../api/kinds/read.js';

type Operation = { op: 'add' | 'remove'; path: string; value?: unknown };

const escape = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');

export function clonePatches(vm: Record<string, unknown>, cloneSpec: Record<string, unknown>): string[] {
  const ops: Operation[] = [];
  const newMacs = stringMapAt(cloneSpec, 'newMacAddresses');
  recordsAt(vm, 'spec', 'template', 'spec', 'domain', 'devices', 'interfaces').forEach((iface, index) => {
    const path = `/spec/template/spec/domain/devices/interfaces/${index}/macAddress`;
    const mac = newMacs[stringAt(iface, 'name') ?? ''];
    if (mac !== undefined && mac !== '') ops.push({ op: 'add', path, value: mac });
    else if (iface.macAddress !== undefined) ops.push({ op: 'remove', path });
  });
  const firmware = recordAt(vm, 'spec', 'template', 'spec', 'domain', 'firmware');
  const serial = stringAt(cloneSpec, 'newSMBiosSerial');
  if (serial !== undefined && serial !== '') {
    ops.push(firmware === undefined ? { op: 'add', path: '/spec/template/spec/domain/firmware', value: { serial } } : { op: 'add', path: '/spec/template/spec/domain/firmware/serial', value: serial });
  } else if (firmware?.serial !== undefined) {
    ops.push({ op: 'remove', path: '/spec/template/spec/domain/firmware/serial' });
  }
  if (firmware?.uuid !== undefined) ops.push({ op: 'remove', path: '/spec/template/spec/domain/firmware/uuid' });
  const meta = recordAt(vm, 'metadata');
  removeFiltered(ops, stringMapAt(meta, 'labels'), filtersAt(cloneSpec, 'labelFilters'), '/metadata/labels');
  const vmAnnotations = { ...stringMapAt(meta, 'annotations') };
  // Restore needs it; the filters never drop it.
  delete vmAnnotations['restore.kubevirt.io/lastRestoreUID'];
  removeFiltered(ops, vmAnnotations, filtersAt(cloneSpec, 'annotationFilters'), '/metadata/annotations');
  const templateMeta = recordAt(vm, 'spec', 'template', 'metadata');
  removeFiltered(ops, stringMapAt(templateMeta, 'labels'), filtersAt(cloneSpec, 'template', 'labelFilters'), '/spec/template/metadata/labels');
  removeFiltered(ops, stringMapAt(templateMeta, 'annotations'), filtersAt(cloneSpec, 'template', 'annotationFilters'), '/spec/template/metadata/annotations');
  const own = Array.isArray(cloneSpec.patches) ? cloneSpec.patches.filter((p): p is string => typeof p === 'string') : [];
  return [...ops.map((op) => JSON.stringify(op)), ...own];
}

function filtersAt(spec: Record<string, unknown>, ...path: string[]): string[] | undefined {
  let value: unknown = spec;
  for (const key of path) value = isPlainObject(value) ? value[key] : undefined;
  return Array.isArray(value) ? value.filter((f): f is string => typeof f === 'string') : undefined;
}

/**
 * KubeVirt's filters: a key is kept when a filter matches it (a regular
 * expression, `*` for all) and no `!`-negated filter does. No filters: all kept.
 */
function removeFiltered(ops: Operation[], map: Record<string, string>, filters: string[] | undefined, base: string): void {
  if (filters === undefined) return;
  const include = filters.filter((f) => !f.startsWith('!')).map((f) => (f === '*' ? '.*' : f));
  const exclude = filters.filter((f) => f.startsWith('!')).map((f) => f.slice(1));
  const matches = (pattern: string, key: string): boolean => {
    try {
      return new RegExp(pattern).test(key);
    } catch {
      return false;
    }
  };
  for (const key of Object.keys(map)) {
    const kept = include.some((f) => matches(f, key)) && !exclude.some((f) => matches(f, key));
    if (!kept) ops.push({ op: 'remove', path: `${base}/${escape(key)}` });
  }
}

/** The VM a clone's target gets by default: `<source>-clone-<5 characters of the clone's uid>` (KubeVirt picks 5 random ones). */
export function defaultTargetName(clone: KObject): string {
  const source = stringAt(clone, 'spec', 'source', 'name') ?? 'vm';
  return `${source}-clone-${(clone.metadata.uid ?? '').replace(/-/g, '').slice(0, 5)}`;
}
