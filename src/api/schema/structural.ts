/**
 * Checks that a CRD's `openAPIV3Schema` is structural, as
 * apiextensions-apiserver requires before it serves a version
 * (`schema/validation.go`): every node has a type unless it is int-or-string
 * or preserves unknown fields, the root is an object, `metadata` says nothing
 * beyond `name` and `generateName`, and value validations (allOf, anyOf,
 * oneOf, not) only constrain, never declare.
 */
import type { FieldError } from '../errors.js';
import type { JSONSchemaProps } from '../resource.js';
import { formatValue } from './errors.js';

export interface CheckStructuralOptions {
  /** Field path of the schema in the CRD; default `openAPIV3Schema`. */
  path?: string;
}

type Level = 'root' | 'item' | 'field';

const required = (field: string, detail: string): FieldError => ({ field, reason: 'FieldValueRequired', message: `Required value: ${detail}` });
const forbidden = (field: string, detail: string): FieldError => ({ field, reason: 'FieldValueForbidden', message: `Forbidden: ${detail}` });
const invalid = (field: string, value: unknown, detail: string): FieldError => ({
  field,
  reason: 'FieldValueInvalid',
  message: `Invalid value: ${formatValue(value)}: ${detail}`,
});

const missingTypeDetail: Record<Level, string> = {
  root: 'must not be empty at the root',
  item: 'must not be empty for specified array items',
  field: 'must not be empty for specified object fields',
};

// What a value validation (a node under allOf/anyOf/oneOf/not) must leave to the structural part.
const declarativeKeys: [keyof JSONSchemaProps, string][] = [
  ['type', 'must be empty to be structural'],
  ['additionalProperties', 'must be undefined to be structural'],
  ['default', 'must be undefined to be structural'],
  ['title', 'must be empty to be structural'],
  ['description', 'must be empty to be structural'],
  ['nullable', 'must be false to be structural'],
  ['x-kubernetes-preserve-unknown-fields', 'must be false to be structural'],
  ['x-kubernetes-embedded-resource', 'must be false to be structural'],
  ['x-kubernetes-int-or-string', 'must be false to be structural'],
  ['x-kubernetes-list-map-keys', 'must be empty to be structural'],
  ['x-kubernetes-list-type', 'must be undefined to be structural'],
  ['x-kubernetes-map-type', 'must be undefined to be structural'],
];

/** Errors that make `schema` non-structural; empty when it is structural. */
export function checkStructural(schema: JSONSchemaProps, options: CheckStructuralOptions = {}): FieldError[] {
  const errors: FieldError[] = [];
  node(schema, 'root', options.path ?? 'openAPIV3Schema', errors);
  return errors;
}

function node(s: JSONSchemaProps, level: Level, path: string, errors: FieldError[]): void {
  const embedded = s['x-kubernetes-embedded-resource'] === true;
  const intOrString = s['x-kubernetes-int-or-string'] === true;
  const preserve = s['x-kubernetes-preserve-unknown-fields'];

  if (embedded && s.type !== 'object') {
    errors.push(s.type === undefined ? required(`${path}.type`, 'must be object if x-kubernetes-embedded-resource is true') : invalid(`${path}.type`, s.type, 'must be object if x-kubernetes-embedded-resource is true'));
  } else if (s.type === undefined && !intOrString && preserve !== true) {
    errors.push(required(`${path}.type`, missingTypeDetail[level]));
  }
  if (level === 'root' && s.type !== undefined && s.type !== 'object') errors.push(invalid(`${path}.type`, s.type, 'must be object at the root'));
  if (s.type === 'array' && s.items === undefined) errors.push(required(`${path}.items`, 'must be specified'));
  if (preserve === false) errors.push(invalid(`${path}.x-kubernetes-preserve-unknown-fields`, false, 'must be true or undefined'));
  if (intOrString && preserve === true) errors.push(invalid(`${path}.x-kubernetes-preserve-unknown-fields`, true, 'must be false if x-kubernetes-int-or-string is true'));
  if (intOrString && embedded) errors.push(invalid(`${path}.x-kubernetes-embedded-resource`, true, 'must be false if x-kubernetes-int-or-string is true'));
  if (embedded && preserve !== true && Object.keys(s.properties ?? {}).length === 0) {
    errors.push(required(`${path}.properties`, 'must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields'));
  }
  additionalProperties(s, level, embedded, path, errors);
  listType(s, path, errors);
  pattern(s, path, errors);
  if (level === 'root' || embedded) typeMeta(s, level, path, errors);

  for (const [name, prop] of Object.entries(s.properties ?? {})) node(prop, 'field', `${path}.properties[${name}]`, errors);
  if (s.items !== undefined) node(s.items, 'item', `${path}.items`, errors);
  if (typeof s.additionalProperties === 'object') node(s.additionalProperties, 'field', `${path}.additionalProperties`, errors);
  valueValidations(s, intOrString, path, errors);
}

function additionalProperties(s: JSONSchemaProps, level: Level, embedded: boolean, path: string, errors: FieldError[]): void {
  if (s.additionalProperties === undefined) return;
  const at = `${path}.additionalProperties`;
  if (level === 'root') errors.push(forbidden(at, 'must not be used at the root'));
  if (embedded) errors.push(forbidden(at, 'must not be used if x-kubernetes-embedded-resource is set'));
  if (s.properties !== undefined && Object.keys(s.properties).length > 0) errors.push(forbidden(at, 'additionalProperties and properties are mutual exclusive'));
  if (s.additionalProperties === false) errors.push(forbidden(at, 'must not be false'));
}

function listType(s: JSONSchemaProps, path: string, errors: FieldError[]): void {
  const type = s['x-kubernetes-list-type'];
  const keys = s['x-kubernetes-list-map-keys'];
  if (type !== undefined && s.type !== 'array') errors.push(invalid(`${path}.x-kubernetes-list-type`, type, 'must only be used if type is array'));
  if (type === 'map' && (keys === undefined || keys.length === 0)) errors.push(required(`${path}.x-kubernetes-list-map-keys`, 'must not be empty if x-kubernetes-list-type is map'));
  if (keys !== undefined && keys.length > 0 && type !== 'map') errors.push(forbidden(`${path}.x-kubernetes-list-map-keys`, 'must only be used if x-kubernetes-list-type is map'));
  if (type === 'map' && s.items !== undefined && s.items.type !== 'object') errors.push(invalid(`${path}.items.type`, s.items.type ?? '', 'must be object if parent array\'s x-kubernetes-list-type is map'));
}

function pattern(s: JSONSchemaProps, path: string, errors: FieldError[]): void {
  if (s.pattern === undefined) return;
  try {
    new RegExp(s.pattern, 'u');
  } catch (err) {
    errors.push(invalid(`${path}.pattern`, s.pattern, `must be a valid regular expression, but isn't: ${err instanceof Error ? err.message : String(err)}`));
  }
}

function typeMeta(s: JSONSchemaProps, level: Level, path: string, errors: FieldError[]): void {
  for (const name of ['kind', 'apiVersion']) {
    const prop = s.properties?.[name];
    if (prop !== undefined && prop.type !== 'string') errors.push(invalid(`${path}.properties[${name}].type`, prop.type ?? '', 'must be string'));
  }
  const metadata = s.properties?.['metadata'];
  if (metadata === undefined) return;
  const at = `${path}.properties[metadata]`;
  if (metadata.type !== 'object') errors.push(invalid(`${at}.type`, metadata.type ?? '', 'must be object'));
  if (level !== 'root') return;
  // Descriptions and titles are documentation; anything else besides name/generateName is a constraint on ObjectMeta.
  const { type: _type, description: _description, title: _title, properties, ...rest } = metadata;
  const extra = Object.keys(properties ?? {}).filter((p) => p !== 'name' && p !== 'generateName');
  if (extra.length > 0 || Object.keys(rest).length > 0) {
    errors.push(forbidden(at, 'must not specify anything other than name and generateName, but metadata is implicitly specified'));
  }
}

function valueValidations(s: JSONSchemaProps, intOrString: boolean, path: string, errors: FieldError[]): void {
  const lists: ['allOf' | 'anyOf' | 'oneOf', JSONSchemaProps[] | undefined][] = [
    ['allOf', s.allOf],
    ['anyOf', s.anyOf],
    ['oneOf', s.oneOf],
  ];
  for (const [name, list] of lists) {
    (list ?? []).forEach((v, i) => {
      // int-or-string spells its two types out: anyOf: [{type: integer}, {type: string}], also as allOf[0].anyOf.
      const allowTypes = intOrString && (name === 'anyOf' || (name === 'allOf' && i === 0));
      valueValidation(v, `${path}.${name}[${i}]`, allowTypes, errors);
    });
  }
  if (s.not !== undefined) valueValidation(s.not, `${path}.not`, false, errors);
}

function valueValidation(v: JSONSchemaProps, path: string, allowTypes: boolean, errors: FieldError[]): void {
  for (const [key, detail] of declarativeKeys) {
    if (v[key] === undefined || (key === 'type' && allowTypes && (v.type === 'integer' || v.type === 'string'))) continue;
    if ((key === 'nullable' || key.startsWith('x-kubernetes-')) && v[key] === false) continue;
    errors.push(forbidden(`${path}.${key}`, detail));
  }
  for (const [name, prop] of Object.entries(v.properties ?? {})) valueValidation(prop, `${path}.properties[${name}]`, false, errors);
  if (v.items !== undefined) valueValidation(v.items, `${path}.items`, false, errors);
  valueValidations(v, allowTypes, path, errors);
}
