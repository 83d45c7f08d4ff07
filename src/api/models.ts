/**
 * OpenAPI models of KubeVirt's, CDI's and Kubernetes' kinds, as structural
 * schemas. `scripts/gen-api.mjs` generates them at build time from the
 * declarations in `@kubevirt-ui-ext/kubevirt-api` into
 * `src/api/generated/models.json` (not committed); this module inlines them.
 *
 * The JSON is loaded on first use from `./generated/models.json` next to this
 * module, else from `src/api/generated/` of the repository this module was
 * compiled from (`<outDir>/src/api/models.js` → `<repo>/src/api/generated/`),
 * so `dist/`, `dist-*` and the sources all find the one generated file.
 */
import { createRequire } from 'node:module';
import type { JSONSchemaProps } from './resource.js';
import { isPlainObject } from './object.js';

/** A schema node as generated: may be `{ $ref: "<pkg>:<Interface>", ...overrides }`. */
type RawNode = JSONSchemaProps & { $ref?: string };

interface Generated {
  source: string;
  models: Record<string, RawNode>;
  /** Bare interface name → `<pkg>:<Interface>` (KubeVirt, then CDI, then Kubernetes when names clash). */
  names: Record<string, string>;
}

// A model that refers to itself (JSONSchemaProps) is expanded this many levels deep
// on one path; below that its value is kept as given, unvalidated.
const recursionDepth = 3;

const candidatePaths = ['./generated/models.json', '../../../src/api/generated/models.json'];

let generated: Generated | undefined;
let inliner: Inliner | undefined;
const results = new Map<string, JSONSchemaProps>();

function load(): Generated {
  if (generated !== undefined) return generated;
  const require = createRequire(import.meta.url);
  for (const path of candidatePaths) {
    let value: unknown;
    try {
      value = require(path);
    } catch (err) {
      if (isPlainObject(err) && err.code === 'MODULE_NOT_FOUND') continue;
      throw err;
    }
    if (!isPlainObject(value) || !isPlainObject(value.models) || !isPlainObject(value.names) || typeof value.source !== 'string') {
      throw new Error(`${path} is not a models file written by scripts/gen-api.mjs; run \`node scripts/gen-api.mjs\``);
    }
    generated = value as unknown as Generated;
    return generated;
  }
  throw new Error('OpenAPI models not found (src/api/generated/models.json): run `node scripts/gen-api.mjs` (part of `npm run build`)');
}

function keyOf(data: Generated, name: string): string | undefined {
  if (Object.hasOwn(data.models, name)) return name;
  return Object.hasOwn(data.names, name) ? data.names[name] : undefined;
}

/** True when `name` (an interface name such as `V1VirtualMachine`, or `<pkg>:<Interface>`) is a known model. */
export function hasModel(name: string): boolean {
  return keyOf(load(), name) !== undefined;
}

/**
 * The fully inlined structural schema of a model, e.g. `V1VirtualMachine`,
 * `V1beta1DataVolume`, `IoK8sApiCoreV1ConfigMap`, or a qualified
 * `kubevirt:V1ResourceRequirements` / `cdi:V1beta1DataVolumeSpec` where
 * KubeVirt's and CDI's names clash (a bare name means KubeVirt's).
 *
 * The result has no `$ref`. It is cached, frozen and shares sub-schemas
 * between models, so `JSON.stringify` writes shared parts once per use;
 * clone it before changing it.
 */
export function modelSchema(name: string): JSONSchemaProps {
  const data = load();
  const key = keyOf(data, name);
  if (key === undefined) throw new Error(`unknown OpenAPI model "${name}" (models come from ${data.source})`);
  let schema = results.get(key);
  if (schema === undefined) {
    inliner ??= new Inliner(data.models);
    schema = deepFreeze(inliner.expand(key));
    results.set(key, schema);
  }
  return schema;
}

/** Expands `$ref`s; each distinct expansion is built once and shared. */
class Inliner {
  private readonly models: Record<string, RawNode>;
  private readonly recursive: Set<string>;
  private readonly expanded = new Map<string, JSONSchemaProps>();
  private readonly onPath = new Map<string, number>();

  constructor(models: Record<string, RawNode>) {
    this.models = models;
    this.recursive = recursiveModels(models);
  }

  expand(key: string): JSONSchemaProps {
    const recursive = this.recursive.has(key);
    // An acyclic model expands the same everywhere; a recursive one depends on
    // how often each recursive model is already on the path.
    const memo = recursive ? `${key}|${this.recursionState()}` : key;
    const done = this.expanded.get(memo);
    if (done !== undefined) return done;
    const raw = this.models[key];
    if (raw === undefined) throw new Error(`OpenAPI model ${key} is referenced but missing; regenerate with scripts/gen-api.mjs`);
    const depth = this.onPath.get(key) ?? 0;
    if (recursive && depth >= recursionDepth) return cut(raw);
    this.onPath.set(key, depth + 1);
    const schema = this.node(raw);
    if (depth === 0) this.onPath.delete(key);
    else this.onPath.set(key, depth);
    this.expanded.set(memo, schema);
    return schema;
  }

  private recursionState(): string {
    const state: string[] = [];
    for (const [key, count] of this.onPath) if (this.recursive.has(key)) state.push(`${key}=${count}`);
    return state.sort().join(',');
  }

  private node(raw: RawNode): JSONSchemaProps {
    const { $ref, properties, items, additionalProperties, allOf, anyOf, oneOf, not, ...rest } = raw;
    if ($ref !== undefined) {
      const target = this.expand($ref);
      return Object.keys(rest).length === 0 ? target : { ...target, ...rest };
    }
    const out: JSONSchemaProps = { ...rest };
    if (properties !== undefined) {
      out.properties = {};
      for (const [name, prop] of Object.entries(properties)) out.properties[name] = this.node(prop);
    }
    if (items !== undefined) out.items = this.node(items);
    if (additionalProperties !== undefined) {
      out.additionalProperties = typeof additionalProperties === 'boolean' ? additionalProperties : this.node(additionalProperties);
    }
    if (allOf !== undefined) out.allOf = allOf.map((s) => this.node(s));
    if (anyOf !== undefined) out.anyOf = anyOf.map((s) => this.node(s));
    if (oneOf !== undefined) out.oneOf = oneOf.map((s) => this.node(s));
    if (not !== undefined) out.not = this.node(not);
    return out;
  }
}

function cut(raw: RawNode): JSONSchemaProps {
  const schema: JSONSchemaProps = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  if (raw.description !== undefined) schema.description = raw.description;
  return schema;
}

/** Models on a reference cycle (strongly connected components with a cycle, Tarjan's algorithm). */
function recursiveModels(models: Record<string, RawNode>): Set<string> {
  const edges = new Map<string, string[]>();
  for (const [key, schema] of Object.entries(models)) edges.set(key, refsOf(schema, []));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const result = new Set<string>();
  let next = 0;
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (let w = stack.pop(); w !== undefined; w = stack.pop()) {
      onStack.delete(w);
      component.push(w);
      if (w === v) break;
    }
    const selfLoop = (edges.get(v) ?? []).includes(v);
    if (component.length > 1 || selfLoop) for (const w of component) result.add(w);
  };
  for (const key of edges.keys()) if (!index.has(key)) connect(key);
  return result;
}

function refsOf(node: unknown, out: string[]): string[] {
  if (Array.isArray(node)) {
    for (const v of node) refsOf(v, out);
  } else if (isPlainObject(node)) {
    if (typeof node.$ref === 'string') out.push(node.$ref);
    for (const v of Object.values(node)) refsOf(v, out);
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  for (const v of Object.values(value)) deepFreeze(v);
  return Object.freeze(value);
}
