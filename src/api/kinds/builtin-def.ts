/**
 * How a built-in kind is described: names and scope as Kubernetes serves
 * them, its OpenAPI model, and its table (the columns after Name, and a row
 * function for their cells) as Kubernetes' own printers produce it.
 */
import type { KObject } from '../object.js';
import type { PrinterColumn, ResourceDef } from '../resource.js';
import { ageOf } from '../duration.js';
import { modelSchema } from '../models.js';
import { withBuiltinListMetadata } from '../schema/patch-metadata.js';
import { defineLazy } from './lazy.js';

/** Computes the cells after Name of one table row, one per column of `printerColumns`. */
export type PrintRow = NonNullable<ResourceDef['printRow']>;

/** A built-in kind's definition; `printRow` is always present for built-ins. */
export type BuiltinResourceDef = ResourceDef & { printRow: PrintRow };

/** The parts of a built-in kind that differ from kind to kind. */
export interface BuiltinSpec {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  /** True when Kubernetes serves a `/status` subresource for the kind. */
  status?: boolean;
  /** Model name in `@kubevirt-ui-ext/kubevirt-api`, e.g. `IoK8sApiCoreV1ConfigMap`. */
  model: string;
  /** The columns Kubernetes' printer declares after Name, wide ones with priority 1. */
  columns: PrinterColumn[];
  printRow: PrintRow;
  /** The columns and row include the name themselves (see `ResourceDef.printsName`). */
  printsName?: boolean;
}

/** Builds the `ResourceDef` of a built-in kind; its schema is computed on first read. */
export function builtinResource(spec: BuiltinSpec): BuiltinResourceDef {
  const def: BuiltinResourceDef = {
    group: spec.group,
    version: spec.version,
    kind: spec.kind,
    listKind: `${spec.kind}List`,
    plural: spec.plural,
    singular: spec.kind.toLowerCase(),
    namespaced: spec.namespaced,
    shortNames: spec.shortNames ?? [],
    categories: spec.categories ?? [],
    subresources: { status: spec.status ?? false },
    printerColumns: spec.columns,
    schema: undefined,
    builtin: true,
    printRow: spec.printRow,
    ...(spec.printsName === true ? { printsName: true } : {}),
  };
  return defineLazy(def, 'schema', () => withBuiltinListMetadata(modelSchema(spec.model), spec.group, spec.kind));
}

/** The `Name` column, for kinds that print it themselves (`printsName`). */
export function nameColumn(priority = 0): PrinterColumn {
  const col: PrinterColumn = { name: 'Name', type: 'string', format: 'name', description: 'Name of the object.', jsonPath: '.metadata.name' };
  if (priority > 0) col.priority = priority;
  return col;
}

/** The `Age` column; like Kubernetes' printers, the row function renders the age itself, so it is a string. */
export const ageColumn: PrinterColumn = {
  name: 'Age',
  type: 'string',
  description: 'Time since the object was created.',
  jsonPath: '.metadata.creationTimestamp',
};

/** A string column computed by the row function; `jsonPath` names the field it mostly derives from. */
export function column(name: string, jsonPath: string, description: string, priority = 0): PrinterColumn {
  const col: PrinterColumn = { name, type: 'string', description, jsonPath };
  if (priority > 0) col.priority = priority;
  return col;
}

/** The age cell: time since creation, as kubectl shows it (`5m`, `3d`). */
export function ageCell(obj: KObject, now: Date): string {
  return sinceCell(obj.metadata.creationTimestamp, now);
}

/** A timestamp cell rendered as an age, or `<unknown>` when the timestamp is absent. */
export function sinceCell(timestamp: string | undefined, now: Date): string {
  return ageOf(timestamp ?? '', now);
}
