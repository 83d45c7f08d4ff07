/**
 * CustomResourceDefinition validation, following `apiextensions-apiserver`'s
 * rules, field paths and message style for what Vireo supports: names,
 * scope, versions, schemas, printer columns, subresources and conversion.
 * It expects a defaulted CRD (see `defaultCustomResourceDefinition`).
 */
import type { FieldError } from '../errors.js';
import type { KObject } from '../object.js';
import { isDNS1035Label, isDNS1123Subdomain, quote } from '../names.js';
import { arrayAt, asRecord, at, recordAt, recordsAt, stringAt } from './read.js';

const columnTypes = ['integer', 'number', 'string', 'boolean', 'date'];
const columnFormats = ['int32', 'int64', 'float', 'double', 'byte', 'date', 'date-time', 'password'];

/** Problems with a CRD on create, or on update when `old` is given; empty when valid. */
export function validateCustomResourceDefinition(crd: KObject, old?: KObject): FieldError[] {
  const errors: FieldError[] = [];
  const group = stringAt(crd, 'spec', 'group') ?? '';
  const plural = stringAt(crd, 'spec', 'names', 'plural') ?? '';
  const name = crd.metadata.name ?? '';
  if (plural !== '' && group !== '' && name !== `${plural}.${group}`) {
    errors.push(invalid('metadata.name', name, `must be spec.names.plural+"."+spec.group, here ${quote(`${plural}.${group}`)}`));
  }
  errors.push(...validateGroup(group));
  errors.push(...validateNames(recordAt(crd, 'spec', 'names') ?? {}));
  const scope = stringAt(crd, 'spec', 'scope') ?? '';
  if (scope === '') errors.push(required('spec.scope', 'set it to "Namespaced" or "Cluster"'));
  else if (scope !== 'Namespaced' && scope !== 'Cluster') errors.push(notSupported('spec.scope', scope, ['Cluster', 'Namespaced']));
  errors.push(...validateVersions(crd));
  errors.push(...validateConversion(recordAt(crd, 'spec', 'conversion')));
  if (old !== undefined) {
    for (const field of ['group', 'scope'] as const) {
      const before = stringAt(old, 'spec', field);
      const after = stringAt(crd, 'spec', field);
      if (before !== undefined && before !== after) {
        errors.push(invalid(`spec.${field}`, after ?? '', 'field is immutable; delete and recreate the CustomResourceDefinition to change it'));
      }
    }
  }
  return errors;
}

function validateGroup(group: string): FieldError[] {
  if (group === '') return [required('spec.group', 'set it to the API group of the resource, e.g. "stable.example.com"')];
  const errors = isDNS1123Subdomain(group).map((m) => invalid('spec.group', group, m));
  if (!group.includes('.')) errors.push(invalid('spec.group', group, 'should be a domain with at least one dot'));
  return errors;
}

function validateNames(names: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  const dnsLabel = (field: string, value: string): void => {
    for (const m of isDNS1035Label(value)) errors.push(invalid(`spec.names.${field}`, value, m));
  };
  const plural = stringAt(names, 'plural') ?? '';
  if (plural === '') errors.push(required('spec.names.plural', 'set it to the lowercase plural resource name used in URLs'));
  else dnsLabel('plural', plural);
  const singular = stringAt(names, 'singular') ?? '';
  if (singular !== '') dnsLabel('singular', singular);
  const kind = stringAt(names, 'kind') ?? '';
  const listKind = stringAt(names, 'listKind') ?? '';
  if (kind === '') errors.push(required('spec.names.kind', 'set it to the CamelCase kind of the objects'));
  else dnsLabel('kind', kind.toLowerCase());
  if (listKind === '') errors.push(required('spec.names.listKind', 'set it to the kind of lists, usually <Kind>List'));
  else dnsLabel('listKind', listKind.toLowerCase());
  if (kind !== '' && kind === listKind) errors.push(invalid('spec.names.listKind', listKind, 'kind and listKind may not be the same'));
  for (const [field, values] of [['shortNames', arrayAt(names, 'shortNames')], ['categories', arrayAt(names, 'categories')]] as const) {
    values.forEach((value, i) => {
      if (typeof value !== 'string') errors.push(invalid(`spec.names.${field}[${i}]`, String(value), 'must be a string'));
      else for (const m of isDNS1035Label(value)) errors.push(invalid(`spec.names.${field}[${i}]`, value, m));
    });
  }
  return errors;
}

function validateVersions(crd: KObject): FieldError[] {
  const versions = recordsAt(crd, 'spec', 'versions');
  if (versions.length === 0) return [required('spec.versions', 'list at least one version, with served: true and storage: true')];
  const errors: FieldError[] = [];
  const seen = new Set<string>();
  versions.forEach((version, i) => {
    const path = `spec.versions[${i}]`;
    const name = stringAt(version, 'name') ?? '';
    if (name === '') errors.push(required(`${path}.name`, 'name the version, e.g. "v1"'));
    else {
      for (const m of isDNS1035Label(name)) errors.push(invalid(`${path}.name`, name, m));
      if (seen.has(name)) errors.push({ field: `${path}.name`, reason: 'FieldValueDuplicate', message: `Duplicate value: ${quote(name)}` });
      seen.add(name);
    }
    errors.push(...validateSchema(path, version));
    errors.push(...validateColumns(path, recordsAt(version, 'additionalPrinterColumns')));
    errors.push(...validateScale(path, recordAt(version, 'subresources', 'scale')));
  });
  const storage = versions.filter((v) => v['storage'] === true).length;
  if (storage !== 1) {
    errors.push(invalid('spec.versions', `${storage} storage versions`, 'must have exactly one version marked as storage version'));
  }
  if (!versions.some((v) => v['served'] === true)) {
    errors.push(invalid('spec.versions', 'no served versions', 'must have at least one version with served: true, or the resource cannot be used'));
  }
  return errors;
}

function validateSchema(path: string, version: Record<string, unknown>): FieldError[] {
  const schema = recordAt(version, 'schema', 'openAPIV3Schema');
  const schemaPath = `${path}.schema.openAPIV3Schema`;
  if (schema === undefined) {
    return [required(schemaPath, 'schemas are required; use {type: object, x-kubernetes-preserve-unknown-fields: true} to accept any content')];
  }
  const errors: FieldError[] = [];
  if (schema['type'] !== 'object') errors.push(invalid(`${schemaPath}.type`, JSON.stringify(schema['type'] ?? ''), 'must be object at the root'));
  const metadata = recordAt(schema, 'properties', 'metadata', 'properties');
  const extra = Object.keys(metadata ?? {}).filter((k) => k !== 'name' && k !== 'generateName');
  if (extra.length > 0) {
    errors.push({
      field: `${schemaPath}.properties[metadata]`,
      reason: 'FieldValueForbidden',
      message: `Forbidden: must not specify anything other than name and generateName (found ${extra.join(', ')}); metadata's schema is built in`,
    });
  }
  return errors;
}

function validateColumns(path: string, columns: Record<string, unknown>[]): FieldError[] {
  const errors: FieldError[] = [];
  columns.forEach((column, i) => {
    const p = `${path}.additionalPrinterColumns[${i}]`;
    if ((stringAt(column, 'name') ?? '') === '') errors.push(required(`${p}.name`, 'name the column as it should appear in kubectl get'));
    const type = stringAt(column, 'type') ?? '';
    if (type === '') errors.push(required(`${p}.type`, `set one of ${columnTypes.map(quote).join(', ')}`));
    else if (!columnTypes.includes(type)) errors.push(notSupported(`${p}.type`, type, columnTypes));
    const format = stringAt(column, 'format') ?? '';
    if (format !== '' && !columnFormats.includes(format)) errors.push(notSupported(`${p}.format`, format, columnFormats));
    const jsonPath = stringAt(column, 'jsonPath') ?? '';
    if (jsonPath === '') errors.push(required(`${p}.jsonPath`, 'set the JSONPath of the value to show, e.g. ".status.phase"'));
    const priority = at(column, 'priority');
    if (priority !== undefined && (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0)) {
      errors.push(invalid(`${p}.priority`, JSON.stringify(priority), 'must be a non-negative integer (0 shows the column by default, higher only with -o wide)'));
    }
  });
  return errors;
}

function validateScale(path: string, scale: Record<string, unknown> | undefined): FieldError[] {
  if (scale === undefined) return [];
  const errors: FieldError[] = [];
  const p = `${path}.subresources.scale`;
  const check = (field: string, value: string | undefined, prefixes: string[], isRequired: boolean): void => {
    if (value === undefined || value === '') {
      if (isRequired) errors.push(required(`${p}.${field}`, `set a JSON path under ${prefixes.join(' or ')}`));
      return;
    }
    if (!prefixes.some((prefix) => value.startsWith(prefix) && value.length > prefix.length)) {
      errors.push(invalid(`${p}.${field}`, value, `should be a json path under ${prefixes.join(' or ')}`));
    }
  };
  check('specReplicasPath', stringAt(scale, 'specReplicasPath'), ['.spec.'], true);
  check('statusReplicasPath', stringAt(scale, 'statusReplicasPath'), ['.status.'], true);
  check('labelSelectorPath', stringAt(scale, 'labelSelectorPath'), ['.spec.', '.status.'], false);
  return errors;
}

function validateConversion(conversion: Record<string, unknown> | undefined): FieldError[] {
  const strategy = stringAt(conversion, 'strategy') ?? 'None';
  if (strategy === 'None') return [];
  if (strategy !== 'Webhook') return [notSupported('spec.conversion.strategy', strategy, ['None', 'Webhook'])];
  const errors: FieldError[] = [];
  if (asRecord(at(conversion, 'webhook', 'clientConfig')) === undefined) {
    errors.push(required('spec.conversion.webhook.clientConfig', 'a Webhook strategy needs the webhook to call'));
  }
  if (arrayAt(conversion, 'webhook', 'conversionReviewVersions').length === 0) {
    errors.push(required('spec.conversion.webhook.conversionReviewVersions', 'list the ConversionReview versions the webhook accepts, e.g. ["v1"]'));
  }
  return errors;
}

function required(field: string, hint: string): FieldError {
  return { field, reason: 'FieldValueRequired', message: `Required value: ${hint}` };
}

function invalid(field: string, value: string, detail: string): FieldError {
  return { field, reason: 'FieldValueInvalid', message: `Invalid value: ${quote(value)}: ${detail}` };
}

function notSupported(field: string, value: string, supported: string[]): FieldError {
  return {
    field,
    reason: 'FieldValueNotSupported',
    message: `Unsupported value: ${quote(value)}: supported values: ${supported.map(quote).join(', ')}`,
  };
}
