/**
 * `meta.k8s.io/v1 Table` rendering for `kubectl get`: a `Name` column, then
 * the resource's printer columns (or a default `Age`), with cells computed
 * as the CRD table convertor does
 * (`apiextensions-apiserver/pkg/registry/customresource/tableconvertor`).
 * Columns are compiled once per `ResourceDef` and reused for every row.
 */
import type { KObject, ListMeta, ObjectMeta } from './object.js';
import type { PrinterColumn, ResourceDef } from './resource.js';
import { ageOf } from './duration.js';
import { compileJsonPath, formatJsonPathValue } from './jsonpath.js';
import type { JsonPathFn } from './jsonpath.js';

export interface TableColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface PartialObjectMetadata {
  kind: 'PartialObjectMetadata';
  apiVersion: 'meta.k8s.io/v1';
  metadata: ObjectMeta;
}

export interface TableRow {
  /** JSON values; `null` is an empty cell. */
  cells: unknown[];
  /** Per `includeObject`: metadata only (default), the whole object, or `null` for `None`. */
  object: PartialObjectMetadata | KObject | null;
}

export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: ListMeta;
  /** `null` when headers are omitted: every watch event after the first. */
  columnDefinitions: TableColumnDefinition[] | null;
  rows: TableRow[];
}

/** The `includeObject` query parameter. */
export type IncludeObject = 'None' | 'Metadata' | 'Object';

export interface TableOptions {
  /** The clock for `date` cells. */
  now: Date;
  includeObject?: IncludeObject;
  /** Omit `columnDefinitions` (`TableOptions.noHeaders`), as later events of a table watch do. */
  noHeaders?: boolean;
  /** `resourceVersion`, `continue` and `remainingItemCount` of the list the rows come from. */
  listMeta?: ListMeta;
}

/** A resource's table layout, compiled once. */
export interface TableConvertor {
  readonly columnDefinitions: readonly TableColumnDefinition[];
  row(obj: KObject, options: Pick<TableOptions, 'now' | 'includeObject'>): TableRow;
  table(objects: readonly KObject[], options: TableOptions): Table;
}

// From metav1.ObjectMeta's swagger docs, which Kubernetes uses as these columns' descriptions.
const nameDescription =
  'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names';
const creationTimestampDescription =
  'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata';

const ageColumn: PrinterColumn = { name: 'Age', type: 'date', description: creationTimestampDescription, jsonPath: '.metadata.creationTimestamp' };

type CellFn = (obj: KObject, now: Date) => unknown;

/** Cell value of one JSONPath column, per the column type; anything that does not fit is an empty cell. */
function cellFn(column: PrinterColumn): CellFn {
  let path: JsonPathFn;
  try {
    path = compileJsonPath(column.jsonPath);
  } catch {
    // CRD validation rejects bad paths; one that slips through empties its column rather than failing every list.
    return () => null;
  }
  return (obj, now) => {
    const results = path(obj);
    if (results.length === 0) return null;
    const value = results[0];
    switch (column.type) {
      case 'string':
        return formatJsonPathValue(value);
      case 'integer':
        return typeof value === 'number' ? Math.trunc(value) : null;
      case 'number':
        return typeof value === 'number' ? value : null;
      case 'boolean':
        return typeof value === 'boolean' ? value : null;
      case 'date':
        return typeof value === 'string' ? ageOf(value, now) : null;
    }
  };
}

function rowObject(obj: KObject, includeObject: IncludeObject): TableRow['object'] {
  switch (includeObject) {
    case 'None':
      return null;
    case 'Object':
      return obj;
    case 'Metadata':
      return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
  }
}

function listMetaOf(meta: ListMeta | undefined): ListMeta {
  const out: ListMeta = {};
  if (meta === undefined) return out;
  if (meta.resourceVersion !== undefined && meta.resourceVersion !== '') out.resourceVersion = meta.resourceVersion;
  if (meta.continue !== undefined && meta.continue !== '') out.continue = meta.continue;
  if (meta.remainingItemCount !== undefined) out.remainingItemCount = meta.remainingItemCount;
  return out;
}

function compile(def: ResourceDef): TableConvertor {
  const columns = def.printerColumns.length > 0 ? def.printerColumns : [ageColumn];
  const ownName = def.printsName === true && def.printRow !== undefined;
  const columnDefinitions: TableColumnDefinition[] = [
    ...(ownName ? [] : [{ name: 'Name', type: 'string' as const, format: 'name', description: nameDescription, priority: 0 }]),
    ...columns.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format ?? '',
      description: c.description ?? (def.builtin ? '' : `Custom resource definition column (in JSONPath format): ${c.jsonPath}`),
      priority: c.priority ?? 0,
    })),
  ];
  const cells = columns.map(cellFn);
  const printRow = def.printRow;
  const row = (obj: KObject, options: Pick<TableOptions, 'now' | 'includeObject'>): TableRow => {
    const name = obj.metadata.name ?? '';
    const rest = printRow !== undefined ? printRow(obj, options.now) : cells.map((cell) => cell(obj, options.now));
    return { cells: ownName ? rest : [name, ...rest], object: rowObject(obj, options.includeObject ?? 'Metadata') };
  };
  return {
    columnDefinitions,
    row,
    table(objects, options) {
      return {
        kind: 'Table',
        apiVersion: 'meta.k8s.io/v1',
        metadata: listMetaOf(options.listMeta),
        columnDefinitions: options.noHeaders === true ? null : columnDefinitions.map((c) => ({ ...c })),
        rows: objects.map((obj) => row(obj, options)),
      };
    },
  };
}

const convertors = new WeakMap<ResourceDef, TableConvertor>();

/** The compiled table layout of a resource, cached for as long as the `ResourceDef` lives. */
export function tableConvertorFor(def: ResourceDef): TableConvertor {
  let convertor = convertors.get(def);
  if (convertor === undefined) {
    convertor = compile(def);
    convertors.set(def, convertor);
  }
  return convertor;
}

/** Renders `objects` as a `meta.k8s.io/v1` Table for `def`. */
export function buildTable(def: ResourceDef, objects: readonly KObject[], options: TableOptions): Table {
  return tableConvertorFor(def).table(objects, options);
}
