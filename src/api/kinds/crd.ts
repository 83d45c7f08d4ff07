/**
 * CustomResourceDefinition semantics the server needs for every CRD, ours or
 * a user's: defaulting and establishing as `apiextensions-apiserver` does
 * them, and turning a CRD into the `ResourceDef`s it serves.
 */
import type { KObject } from '../object.js';
import type { JSONSchemaProps, PrinterColumn, ResourceDef, ScaleSubresource } from '../resource.js';
import { defineLazy } from './lazy.js';
import { arrayAt, asRecord, at, numberAt, recordAt, recordsAt, stringAt } from './read.js';

/**
 * Applies, in place, the defaults Kubernetes gives a CRD on create and
 * update: `names.singular` (lowercased kind), `names.listKind`
 * (`<Kind>List`) and `conversion.strategy: None`. Returns `crd`.
 */
export function defaultCustomResourceDefinition(crd: KObject): KObject {
  const spec = recordAt(crd, 'spec');
  if (spec === undefined) return crd;
  const names = recordAt(spec, 'names');
  if (names !== undefined) defaultNames(names);
  const conversion = asRecord(spec['conversion']);
  if (conversion === undefined) spec['conversion'] = { strategy: 'None' };
  else if (typeof conversion['strategy'] !== 'string' || conversion['strategy'] === '') conversion['strategy'] = 'None';
  return crd;
}

function defaultNames(names: Record<string, unknown>): void {
  const kind = typeof names['kind'] === 'string' ? names['kind'] : '';
  if (kind === '') return;
  if (typeof names['singular'] !== 'string' || names['singular'] === '') names['singular'] = kind.toLowerCase();
  if (typeof names['listKind'] !== 'string' || names['listKind'] === '') names['listKind'] = `${kind}List`;
}

/**
 * Marks a (valid, defaulted) CRD as served, in place, as Kubernetes' naming
 * and establishing controllers do: `status.acceptedNames` = `spec.names`,
 * conditions `NamesAccepted` and `Established` True (keeping their
 * transition times when already True), and the storage version recorded in
 * `status.storedVersions`. Install scripts wait on `condition=established`.
 */
export function establishCustomResourceDefinition(crd: KObject, now: Date = new Date()): KObject {
  const status = recordAt(crd, 'status') ?? {};
  status['acceptedNames'] = structuredClone(recordAt(crd, 'spec', 'names') ?? {});
  const time = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const previous = recordsAt(status, 'conditions');
  const others = previous.filter((c) => c['type'] !== 'NamesAccepted' && c['type'] !== 'Established');
  const condition = (type: string, reason: string, message: string): Record<string, unknown> => {
    const before = previous.find((c) => c['type'] === type && c['status'] === 'True');
    const since = typeof before?.['lastTransitionTime'] === 'string' ? before['lastTransitionTime'] : time;
    return { type, status: 'True', lastTransitionTime: since, reason, message };
  };
  status['conditions'] = [
    condition('NamesAccepted', 'NoConflicts', 'no conflicts found'),
    condition('Established', 'InitialNamesAccepted', 'the initial names have been accepted'),
    ...others,
  ];
  const stored = arrayAt(status, 'storedVersions').filter((v): v is string => typeof v === 'string');
  const storage = storageVersionOf(crd);
  if (storage !== undefined && !stored.includes(storage)) stored.push(storage);
  status['storedVersions'] = stored;
  crd['status'] = status;
  return crd;
}

/**
 * One `ResourceDef` per served version of the CRD, in the CRD's version
 * order. Printer columns and subresources are per version (as in
 * `apiextensions.k8s.io/v1`); each schema is read from the CRD on first use.
 * Names the CRD leaves out get Kubernetes' defaults; `crd` is not changed.
 */
export function crdToResourceDef(crd: KObject): ResourceDef[] {
  const group = stringAt(crd, 'spec', 'group') ?? '';
  const kind = stringAt(crd, 'spec', 'names', 'kind') ?? '';
  const base = {
    group,
    kind,
    listKind: nonEmpty(stringAt(crd, 'spec', 'names', 'listKind')) ?? `${kind}List`,
    plural: stringAt(crd, 'spec', 'names', 'plural') ?? '',
    singular: nonEmpty(stringAt(crd, 'spec', 'names', 'singular')) ?? kind.toLowerCase(),
    namespaced: stringAt(crd, 'spec', 'scope') !== 'Cluster',
  };
  const shortNames = strings(arrayAt(crd, 'spec', 'names', 'shortNames'));
  const categories = strings(arrayAt(crd, 'spec', 'names', 'categories'));
  return recordsAt(crd, 'spec', 'versions')
    .filter((version) => version['served'] === true)
    .map((version) => {
      const def: ResourceDef = {
        ...base,
        shortNames: [...shortNames],
        categories: [...categories],
        version: stringAt(version, 'name') ?? '',
        subresources: subresourcesOf(version),
        printerColumns: recordsAt(version, 'additionalPrinterColumns').map(printerColumnOf),
        schema: undefined,
        builtin: false,
      };
      return defineLazy(def, 'schema', () => schemaOf(version));
    });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}

function strings(values: unknown[]): string[] {
  return values.filter((v): v is string => typeof v === 'string');
}

function subresourcesOf(version: Record<string, unknown>): ResourceDef['subresources'] {
  const out: ResourceDef['subresources'] = { status: asRecord(at(version, 'subresources', 'status')) !== undefined };
  const scale = recordAt(version, 'subresources', 'scale');
  if (scale !== undefined) {
    const parsed: ScaleSubresource = {
      specReplicasPath: stringAt(scale, 'specReplicasPath') ?? '',
      statusReplicasPath: stringAt(scale, 'statusReplicasPath') ?? '',
    };
    const selector = stringAt(scale, 'labelSelectorPath');
    if (selector !== undefined) parsed.labelSelectorPath = selector;
    out.scale = parsed;
  }
  return out;
}

const columnTypes: readonly PrinterColumn['type'][] = ['integer', 'number', 'string', 'boolean', 'date'];

function printerColumnOf(column: Record<string, unknown>): PrinterColumn {
  const type = columnTypes.find((t) => t === column['type']) ?? 'string';
  const out: PrinterColumn = { name: stringAt(column, 'name') ?? '', type, jsonPath: stringAt(column, 'jsonPath') ?? '' };
  const format = stringAt(column, 'format');
  if (format !== undefined && format !== '') out.format = format;
  const description = stringAt(column, 'description');
  if (description !== undefined && description !== '') out.description = description;
  const priority = numberAt(column, 'priority');
  if (priority !== undefined && priority !== 0) out.priority = priority;
  return out;
}

function schemaOf(version: Record<string, unknown>): JSONSchemaProps | undefined {
  const schema = recordAt(version, 'schema', 'openAPIV3Schema');
  // A served CRD passed validateCustomResourceDefinition and the schema's own structural checks.
  return schema;
}

/** The storage version's name, or undefined when the CRD marks none. */
export function storageVersionOf(crd: KObject): string | undefined {
  const storage = recordsAt(crd, 'spec', 'versions').find((v) => v['storage'] === true);
  return storage === undefined ? undefined : stringAt(storage, 'name');
}
