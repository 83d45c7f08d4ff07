/**
 * The admission chain every write goes through, in Kubernetes' order:
 * kind-specific mutation, pruning of unknown fields (an error under
 * `fieldValidation=Strict`, a warning under `Warn`), schema defaults,
 * structural-schema validation, metadata validation and kind-specific
 * validation (KubeVirt's webhooks' rules). Failures are 400 or 422 with one
 * cause per field.
 */
import type { KObject } from '../api/object.js';
import type { ResourceDef } from '../api/resource.js';
import { ApiError, invalid } from '../api/errors.js';
import type { FieldError } from '../api/errors.js';
import { compileSchema } from '../api/schema/index.js';
import type { CompiledSchema } from '../api/schema/index.js';
import { validateKind } from '../api/validation/index.js';
import { isLabelKey, nameIsDNSLabel, nameIsDNSSubdomain, nameIsDNS1035Label, validateLabels, validateObjectName } from '../api/names.js';
import { defaultCustomResourceDefinition, establishCustomResourceDefinition, validateCustomResourceDefinition } from '../api/kinds/index.js';
import { prepareNamespace } from '../controllers/namespace/prepare.js';
import type { Store } from '../store/types.js';
import type { ResourceRegistry } from './resources.js';
import { admitClaim, isClaim } from './admission-storage.js';
import { admitNetwork, isNetworkAdmitted } from './admission-network.js';
import { admitMigration, isMigrationAdmitted } from './admission-migration.js';
import { ServiceAllocator, defaultServiceClusterIpRange, defaultNodePortRange, isService, parseServiceNetwork } from './admission-service.js';
import type { ServiceNetwork } from './admission-service.js';

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export interface AdmitOptions {
  fieldValidation?: FieldValidation;
  /** A write to the status subresource: only `.status` changed. */
  statusOnly?: boolean;
  /** Who writes: API clients are `user` (KubeVirt's full rules, e.g. reserved labels); in-process controllers are `controller`. */
  writer?: 'user' | 'controller';
}

export interface Admission {
  /**
   * The mutations and checks that read other objects (the default
   * StorageClass of a new claim…), run before `admit`. Status writes skip it.
   * What it returns, the caller calls once the write is stored or refused
   * (a Service's allocations stay locked until then).
   */
  prepare?(def: ResourceDef, obj: KObject, old: KObject | undefined, store: Store): Promise<(() => void) | undefined>;
  /** Mutates `obj` in place (prune, defaults) and throws ApiError when it is not acceptable. */
  admit(def: ResourceDef, obj: KObject, old: KObject | undefined, options: AdmitOptions): { warnings: string[] };
  /** Called once when an object first gets its deletionTimestamp (e.g. a Namespace turns Terminating). */
  onDeleting?(def: ResourceDef, obj: KObject): void;
}

const maxAnnotationBytes = 256 * 1024;

export interface AdmissionOptions {
  /** The Service cluster IP range and node port range (default 10.96.0.0/12 and 30000-32767). */
  serviceNetwork?: ServiceNetwork;
}

export function createAdmission(_registry: ResourceRegistry, options: AdmissionOptions = {}): Admission {
  const services = new ServiceAllocator(options.serviceNetwork ?? parseServiceNetwork(defaultServiceClusterIpRange, defaultNodePortRange));
  const compiled = new WeakMap<object, CompiledSchema>();
  const schemaOf = (def: ResourceDef): CompiledSchema | undefined => {
    if (def.schema === undefined) return undefined;
    let c = compiled.get(def.schema);
    if (c === undefined) compiled.set(def.schema, (c = compileSchema(def.schema)));
    return c;
  };
  return {
    async prepare(def, obj, old, store) {
      if (isClaim(def)) await admitClaim(obj, old, store);
      if (isNetworkAdmitted(def)) await admitNetwork(def, obj, old, store);
      if (isMigrationAdmitted(def)) await admitMigration(obj, old, store);
      if (isService(def)) return services.admit(obj, old, store);
      return undefined;
    },
    admit(def, obj, old, options) {
      mutate(def, obj, old);
      const warnings: string[] = [];
      const schema = schemaOf(def);
      const errors: FieldError[] = [];
      if (schema !== undefined) {
        const unknown = schema.prune(obj);
        if (unknown.length > 0 && !options.statusOnly) {
          if (options.fieldValidation === 'Strict') {
            throw new ApiError('BadRequest', `strict decoding error: ${unknown.map((f) => `unknown field "${f}"`).join(', ')}`);
          }
          if (options.fieldValidation !== 'Ignore') for (const f of unknown) warnings.push(`unknown field "${f}"`);
        }
        schema.applyDefaults(obj);
        errors.push(...schema.validate(obj));
      }
      if (!options.statusOnly) {
        errors.push(...validateMetadata(def, obj, old));
        errors.push(...validateBuiltin(def, obj, old));
        errors.push(...validateKind(def.group, def.kind, obj, old, { writer: options.writer ?? 'controller' }));
      }
      if (errors.length > 0) throw invalid(def.kind, def.group, obj.metadata.name ?? '', errors);
      return { warnings };
    },
    onDeleting(def, obj) {
      if (def.group === '' && def.kind === 'Namespace') prepareNamespace(obj, true);
    },
  };
}

function mutate(def: ResourceDef, obj: KObject, old: KObject | undefined): void {
  if (def.group === '' && def.kind === 'Namespace') prepareNamespace(obj, obj.metadata.deletionTimestamp !== undefined);
  if (def.group === 'apiextensions.k8s.io' && def.kind === 'CustomResourceDefinition') {
    defaultCustomResourceDefinition(obj);
    if (old === undefined) {
      // Instances are removed before the CRD itself goes (the CRD controller does it, then drops this finalizer).
      const finalizers = new Set(obj.metadata.finalizers ?? []);
      finalizers.add('customresourcecleanup.apiextensions.k8s.io');
      obj.metadata.finalizers = [...finalizers];
    }
    establishCustomResourceDefinition(obj);
  }
}

function validateBuiltin(def: ResourceDef, obj: KObject, old: KObject | undefined): FieldError[] {
  if (def.group === 'apiextensions.k8s.io' && def.kind === 'CustomResourceDefinition') return validateCustomResourceDefinition(obj, old);
  return [];
}

function nameRule(def: ResourceDef): (name: string, prefix: boolean) => string[] {
  if (def.group === '' && (def.kind === 'Namespace' || def.kind === 'ServiceAccount')) return nameIsDNSLabel;
  if (def.group === '' && def.kind === 'Service') return nameIsDNS1035Label;
  return nameIsDNSSubdomain;
}

function validateMetadata(def: ResourceDef, obj: KObject, old: KObject | undefined): FieldError[] {
  const meta = obj.metadata;
  const errors: FieldError[] = [];
  if (old === undefined) errors.push(...validateObjectName(meta, { nameFn: nameRule(def) }));
  errors.push(...validateLabels(meta.labels));
  let annotationBytes = 0;
  for (const [key, value] of Object.entries(meta.annotations ?? {})) {
    for (const msg of isLabelKey(key)) errors.push({ field: 'metadata.annotations', reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(key)}: ${msg}` });
    annotationBytes += key.length + value.length;
  }
  if (annotationBytes > maxAnnotationBytes) {
    errors.push({ field: 'metadata.annotations', reason: 'FieldValueTooLong', message: `Too long: must have at most ${maxAnnotationBytes} bytes` });
  }
  (meta.finalizers ?? []).forEach((f, i) => {
    const msgs = isLabelKey(f);
    if (msgs.length > 0) errors.push({ field: `metadata.finalizers[${i}]`, reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(f)}: ${msgs.join('; ')}` });
  });
  (meta.ownerReferences ?? []).forEach((ref, i) => {
    for (const field of ['apiVersion', 'kind', 'name', 'uid'] as const) {
      if (ref[field] === '') errors.push({ field: `metadata.ownerReferences[${i}].${field}`, reason: 'FieldValueRequired', message: `Required value: ${field} must not be empty` });
    }
  });
  return errors;
}
