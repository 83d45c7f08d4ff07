/**
 * A resource's structural schema compiled once into the three steps
 * Kubernetes runs on every write of a custom resource, in this order:
 * prune unknown fields, apply defaults, validate.
 */
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import type { FieldError } from '../errors.js';
import type { JSONSchemaProps } from '../resource.js';
import { modelSchema } from '../models.js';
import { toAjvSchema } from './convert.js';
import { applySchemaDefaults } from './defaults.js';
import { toFieldErrors } from './errors.js';
import { hasListTypes, validateListTypes } from './listtype.js';
import { pruneObject } from './prune.js';

/** The schema operations on one whole object (`apiVersion`, `kind`, `metadata`, ...). */
export interface CompiledSchema {
  /**
   * Removes, in place, fields the schema does not specify and returns their
   * paths, sorted (`spec.foo`, `spec.disks[0].bogus`, `metadata.bogus`):
   * an error under `fieldValidation=Strict`, warnings under `Warn`.
   */
  prune(obj: unknown): string[];
  /** Drops non-nullable nulls and fills in `default`s, in place. */
  applyDefaults(obj: unknown): void;
  /** Field errors, empty when `obj` is valid. */
  validate(obj: unknown): FieldError[];
}

const objectMetaModel = 'IoK8sApimachineryPkgApisMetaV1ObjectMeta';

let ajv: Ajv | undefined;
const registeredFormats = new Set<string>();
const compiled = new WeakMap<JSONSchemaProps, CompiledSchema>();
let anything: CompiledSchema | undefined;

function validator(): Ajv {
  // allErrors: report every field, as Kubernetes does; verbose: errors carry the bad value.
  // optimize: false: ajv's code optimisation passes cost more than they save on schemas this large.
  ajv ??= new Ajv({ allErrors: true, verbose: true, strict: false, validateSchema: false, addUsedSchema: false, code: { optimize: false } });
  return ajv;
}

/**
 * Compiles the structural schema of a whole object (a `ResourceDef.schema`;
 * undefined accepts any content). The result is cached per schema object.
 * The root's `metadata` is always ObjectMeta, plus what the schema says about
 * `name` and `generateName`.
 */
export function compileSchema(schema: JSONSchemaProps | undefined): CompiledSchema {
  if (schema === undefined) return (anything ??= build(undefined));
  let result = compiled.get(schema);
  if (result === undefined) {
    result = build(schema);
    compiled.set(schema, result);
  }
  return result;
}

function build(schema: JSONSchemaProps | undefined): CompiledSchema {
  const objectMeta = modelSchema(objectMetaModel);
  const ajvInstance = validator();
  const ajvSchema = toAjvSchema(schema, {
    objectMeta,
    useFormat(name, check) {
      if (registeredFormats.has(name)) return;
      ajvInstance.addFormat(name, { type: 'string', validate: check });
      registeredFormats.add(name);
    },
  });
  let validateFn: ValidateFunction | undefined;
  const listTypes = hasListTypes(schema);
  return {
    prune: (obj) => pruneObject(obj, schema, objectMeta),
    applyDefaults(obj) {
      if (schema !== undefined) applySchemaDefaults(obj, schema);
    },
    validate(obj) {
      // Compiled on first use: many kinds are registered, few are written to.
      if (validateFn === undefined) {
        validateFn = ajvInstance.compile(ajvSchema);
        // The instance would otherwise keep every schema ever compiled (CRDs come and go).
        ajvInstance.removeSchema(ajvSchema);
      }
      const errors = validateFn(obj) ? [] : toFieldErrors(validateFn.errors ?? [], obj);
      if (listTypes) errors.push(...validateListTypes(obj, schema));
      return errors;
    },
  };
}
