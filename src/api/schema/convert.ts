/**
 * Translates an OpenAPI v3 structural schema into the JSON Schema ajv
 * validates, with Kubernetes' meaning of the OpenAPI extensions: `nullable`,
 * `x-kubernetes-int-or-string` (integer or string), preserved unknown fields
 * (no constraint), embedded resources and the resource root (ObjectMeta for
 * `metadata`), and only the formats Kubernetes checks.
 */
import type { JSONSchemaProps } from '../resource.js';
import { formatCheck } from './formats.js';

/** A JSON Schema for ajv. */
export type AjvSchema = Record<string, unknown>;

export interface ConvertOptions {
  /** ObjectMeta's schema: `metadata` of the root and of embedded resources is checked against it. */
  objectMeta: JSONSchemaProps;
  /** Called for every format that ajv must know, with its check. */
  useFormat: (name: string, check: (value: string) => boolean) => void;
}

const intOrStringBranch = (s: JSONSchemaProps): boolean =>
  Object.keys(s).length === 1 && (s.type === 'integer' || s.type === 'string');

/** The ajv schema of a whole object: `schema` is its root (or undefined: anything). */
export function toAjvSchema(schema: JSONSchemaProps | undefined, options: ConvertOptions): AjvSchema {
  const root: JSONSchemaProps = schema ?? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  return withDefinitions(new Converter(options).node(root, true));
}

const childSchemas = (n: AjvSchema): AjvSchema[] => {
  const out: AjvSchema[] = [];
  const add = (v: unknown): void => {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) out.push(v as AjvSchema);
  };
  for (const v of Object.values((n['properties'] ?? {}) as AjvSchema)) add(v);
  add(n['items']);
  add(n['additionalProperties']);
  add(n['not']);
  for (const key of ['allOf', 'anyOf', 'oneOf']) for (const v of (n[key] ?? []) as unknown[]) add(v);
  return out;
};

/**
 * Moves object schemas used more than once (models share sub-schemas) into
 * `$defs`, so ajv compiles each once instead of once per use.
 */
function withDefinitions(root: AjvSchema): AjvSchema {
  const uses = new Map<AjvSchema, number>();
  const count = (n: AjvSchema): void => {
    const seen = uses.get(n);
    uses.set(n, (seen ?? 0) + 1);
    if (seen === undefined) for (const c of childSchemas(n)) count(c);
  };
  count(root);
  const ids = new Map<AjvSchema, string>();
  for (const [n, k] of uses) if (k > 1 && n !== root && n['properties'] !== undefined) ids.set(n, `d${ids.size}`);
  if (ids.size === 0) return root;
  const rewrite = (n: AjvSchema, top: boolean): AjvSchema => {
    const id = ids.get(n);
    if (!top && id !== undefined) return { $ref: `#/$defs/${id}` };
    const out: AjvSchema = { ...n };
    const map = (v: unknown): unknown => (typeof v === 'object' && v !== null && !Array.isArray(v) ? rewrite(v as AjvSchema, false) : v);
    if (n['properties'] !== undefined) out['properties'] = Object.fromEntries(Object.entries(n['properties'] as AjvSchema).map(([k, v]) => [k, map(v)]));
    for (const key of ['items', 'additionalProperties', 'not']) if (n[key] !== undefined) out[key] = map(n[key]);
    for (const key of ['allOf', 'anyOf', 'oneOf']) if (n[key] !== undefined) out[key] = (n[key] as unknown[]).map(map);
    return out;
  };
  const defs: AjvSchema = {};
  for (const [n, id] of ids) defs[id] = rewrite(n, true);
  return { ...rewrite(root, true), $defs: defs };
}

class Converter {
  private readonly options: ConvertOptions;
  private readonly done = new WeakMap<JSONSchemaProps, AjvSchema>();
  private objectMeta: AjvSchema | undefined;

  constructor(options: ConvertOptions) {
    this.options = options;
  }

  node(s: JSONSchemaProps, resource = false): AjvSchema {
    const isResource = resource || s['x-kubernetes-embedded-resource'] === true;
    if (!isResource) {
      const cached = this.done.get(s);
      if (cached !== undefined) return cached;
    }
    const out: AjvSchema = {};
    const intOrString = s['x-kubernetes-int-or-string'] === true;
    const types: string[] = intOrString ? ['integer', 'string'] : s.type !== undefined ? [s.type] : [];
    if (types.length > 0) out['type'] = s.nullable === true ? [...types, 'null'] : types.length === 1 ? types[0] : types;
    if (s.enum !== undefined) out['enum'] = s.nullable === true && !s.enum.includes(null) ? [...s.enum, null] : s.enum;
    this.format(s, types, out);
    copy(s, out, ['minLength', 'maxLength', 'multipleOf', 'minItems', 'maxItems', 'uniqueItems', 'minProperties', 'maxProperties']);
    // Kubernetes' patterns are Go (RE2) syntax; one JavaScript cannot compile is not checked rather than failing every write.
    if (s.pattern !== undefined && compiles(s.pattern)) out['pattern'] = s.pattern;
    this.bounds(s, out);
    if (s.required !== undefined && s.required.length > 0) out['required'] = s.required;
    const properties = this.properties(s, isResource);
    if (properties !== undefined) out['properties'] = properties;
    if (s.items !== undefined) out['items'] = this.node(s.items);
    if (s.additionalProperties === false) out['additionalProperties'] = false;
    else if (typeof s.additionalProperties === 'object') out['additionalProperties'] = this.node(s.additionalProperties);
    this.junctors(s, intOrString, out);
    if (!isResource) this.done.set(s, out);
    return out;
  }

  private format(s: JSONSchemaProps, types: string[], out: AjvSchema): void {
    // Formats on integers and numbers (int32, double, ...) are not validated by Kubernetes.
    if (s.format === undefined || (types.length > 0 && !types.includes('string'))) return;
    const check = formatCheck(s.format);
    if (check === undefined) return;
    this.options.useFormat(s.format, check);
    out['format'] = s.format;
  }

  private bounds(s: JSONSchemaProps, out: AjvSchema): void {
    // OpenAPI v3.0's boolean exclusiveMinimum/Maximum become draft-07's numeric ones.
    if (s.minimum !== undefined) out[s.exclusiveMinimum === true ? 'exclusiveMinimum' : 'minimum'] = s.minimum;
    if (s.maximum !== undefined) out[s.exclusiveMaximum === true ? 'exclusiveMaximum' : 'maximum'] = s.maximum;
  }

  private properties(s: JSONSchemaProps, isResource: boolean): AjvSchema | undefined {
    const props: AjvSchema = {};
    for (const [name, prop] of Object.entries(s.properties ?? {})) props[name] = this.node(prop);
    if (isResource) {
      props['apiVersion'] = withString(props['apiVersion']);
      props['kind'] = withString(props['kind']);
      props['metadata'] = this.metadata(s.properties?.['metadata']);
    }
    return Object.keys(props).length > 0 ? props : undefined;
  }

  /** ObjectMeta, plus whatever a CRD says about `name` and `generateName` (all it may say). */
  private metadata(declared: JSONSchemaProps | undefined): AjvSchema {
    this.objectMeta ??= this.node(this.options.objectMeta);
    const name = declared?.properties?.['name'];
    const generateName = declared?.properties?.['generateName'];
    if (name === undefined && generateName === undefined) return this.objectMeta;
    const extra: AjvSchema = {};
    if (name !== undefined) extra['name'] = this.node(name);
    if (generateName !== undefined) extra['generateName'] = this.node(generateName);
    return { allOf: [this.objectMeta, { properties: extra }] };
  }

  private junctors(s: JSONSchemaProps, intOrString: boolean, out: AjvSchema): void {
    // Structural int-or-string schemas spell the type out as `anyOf: [{type: integer}, {type: string}]`
    // (possibly as the first `allOf` entry); the type above already says that.
    const anyOf = intOrString && s.anyOf?.every(intOrStringBranch) === true ? undefined : s.anyOf;
    const allOf = intOrString ? s.allOf?.filter((a) => a.anyOf?.every(intOrStringBranch) !== true || Object.keys(a).length > 1) : s.allOf;
    if (allOf !== undefined && allOf.length > 0) out['allOf'] = allOf.map((x) => this.node(x));
    if (anyOf !== undefined && anyOf.length > 0) out['anyOf'] = anyOf.map((x) => this.node(x));
    if (s.oneOf !== undefined && s.oneOf.length > 0) out['oneOf'] = s.oneOf.map((x) => this.node(x));
    if (s.not !== undefined) out['not'] = this.node(s.not);
  }
}

function compiles(pattern: string): boolean {
  try {
    new RegExp(pattern, 'u');
    return true;
  } catch {
    return false;
  }
}

function copy(from: JSONSchemaProps, to: AjvSchema, keys: (keyof JSONSchemaProps)[]): void {
  for (const key of keys) if (from[key] !== undefined) to[key] = from[key];
}

function withString(declared: unknown): AjvSchema {
  return declared === undefined ? { type: 'string' } : { allOf: [{ type: 'string' }, declared] };
}
