import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JSONSchemaProps, ResourceDef } from '../resource.js';
import { isPlainObject } from '../object.js';
import { modelSchema } from '../models.js';
import { definitionName, openApiDocument } from './openapi-doc.js';

type Json = Record<string, unknown>;

function def(over: Partial<ResourceDef> & Pick<ResourceDef, 'group' | 'version' | 'kind' | 'plural'>): ResourceDef {
  return {
    listKind: `${over.kind}List`,
    singular: over.kind.toLowerCase(),
    namespaced: true,
    shortNames: [],
    categories: [],
    subresources: { status: false },
    printerColumns: [],
    schema: undefined,
    builtin: false,
    ...over,
  };
}

const crdShaped = (model: string): JSONSchemaProps => {
  const schema = modelSchema(model);
  return { ...schema, properties: { ...schema.properties, metadata: { type: 'object' } } };
};

const vm = def({ group: 'kubevirt.io', version: 'v1', kind: 'VirtualMachine', plural: 'virtualmachines', subresources: { status: true }, schema: crdShaped('V1VirtualMachine') });
const pool = def({
  group: 'pool.kubevirt.io',
  version: 'v1beta1',
  kind: 'VirtualMachinePool',
  plural: 'virtualmachinepools',
  subresources: { status: true, scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas' } },
  schema: crdShaped('V1beta1VirtualMachinePool'),
});
const configMap = def({ group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', builtin: true, schema: modelSchema('IoK8sApiCoreV1ConfigMap') });
const namespace = def({ group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false, builtin: true, schema: modelSchema('IoK8sApiCoreV1Namespace') });

const obj = (v: unknown): Json => (isPlainObject(v) ? v : assert.fail(`not an object: ${JSON.stringify(v)}`));

/** Round-trips through JSON, as a client sees the document. */
const wire = (defs: ResourceDef[]): Json => obj(JSON.parse(JSON.stringify(openApiDocument(defs))));

function patchOperations(doc: Json, gvk: Json): Json[] {
  const ops: Json[] = [];
  for (const item of Object.values(obj(doc['paths']))) {
    const patch = obj(item)['patch'];
    if (isPlainObject(patch) && JSON.stringify(patch['x-kubernetes-group-version-kind']) === JSON.stringify(gvk)) ops.push(patch);
  }
  return ops;
}

/** What kubectl explain does: the GVK from the resource's paths, the schema carrying it, then fields through $ref/allOf. */
function explain(doc: Json, prefix: string, plural: string, fieldPath: string[]): Json {
  let gvk: unknown;
  for (const path of [`${prefix}/${plural}`, `${prefix}/${plural}/{name}`, `${prefix}/namespaces/{namespace}/${plural}`, `${prefix}/namespaces/{namespace}/${plural}/{name}`]) {
    const item = obj(doc['paths'])[path];
    if (!isPlainObject(item)) continue;
    for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
      const op = item[method];
      if (isPlainObject(op) && op['x-kubernetes-group-version-kind'] !== undefined) {
        gvk = op['x-kubernetes-group-version-kind'];
        break;
      }
    }
  }
  const schemas = obj(obj(doc['components'])['schemas']);
  const found = Object.values(schemas).find((s) => {
    const list = obj(s)['x-kubernetes-group-version-kind'];
    return Array.isArray(list) && list.some((g) => JSON.stringify(g) === JSON.stringify(gvk));
  });
  const resolve = (s: Json): Json => {
    const ref = s['$ref'];
    if (typeof ref === 'string') return resolve(obj(schemas[ref.replace('#/components/schemas/', '')]));
    const allOf = s['allOf'];
    if (s['properties'] === undefined && Array.isArray(allOf) && allOf.length === 1) return resolve(obj(allOf[0]));
    return s;
  };
  let schema = resolve(obj(found));
  for (const field of fieldPath) {
    schema = resolve(obj(obj(schema['properties'])[field]));
    if (schema['items'] !== undefined) schema = resolve(obj(schema['items']));
  }
  return schema;
}

test('definition names follow Kubernetes', () => {
  assert.equal(definitionName(vm), 'io.kubevirt.v1.VirtualMachine');
  assert.equal(definitionName({ group: 'cdi.kubevirt.io', version: 'v1beta1', kind: 'DataVolume' }), 'io.kubevirt.cdi.v1beta1.DataVolume');
  assert.equal(definitionName(configMap), 'io.k8s.api.core.v1.ConfigMap');
  assert.equal(definitionName({ group: 'coordination.k8s.io', version: 'v1', kind: 'Lease' }), 'io.k8s.api.coordination.v1.Lease');
  assert.equal(definitionName({ group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'Role' }), 'io.k8s.api.rbac.v1.Role');
  assert.equal(definitionName({ group: 'apps', version: 'v1', kind: 'Deployment' }), 'io.k8s.api.apps.v1.Deployment');
  assert.equal(
    definitionName({ group: 'apiextensions.k8s.io', version: 'v1', kind: 'CustomResourceDefinition' }),
    'io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition',
  );
});

test('every PATCH operation of a kind carries its GVK and a fieldValidation query parameter', () => {
  const doc = wire([vm, pool]);
  for (const [d, count] of [[vm, 2], [pool, 2]] as const) {
    const ops = patchOperations(doc, { group: d.group, kind: d.kind, version: d.version });
    assert.equal(ops.length, count, `${d.kind}: object and status`);
    for (const op of ops) {
      const params = (op['parameters'] as Json[]).filter((p) => p['name'] === 'fieldValidation' && p['in'] === 'query');
      assert.equal(params.length, 1);
    }
  }
  const scale = patchOperations(doc, { group: 'autoscaling', kind: 'Scale', version: 'v1' });
  assert.equal(scale.length, 1);
  assert.ok(obj(obj(doc['components'])['schemas'])['io.k8s.api.autoscaling.v1.Scale']);
});

test('custom resources do not offer strategic merge patch; built-ins do', () => {
  const types = (d: ResourceDef): string[] => {
    const [op] = patchOperations(wire([d]), { group: d.group, kind: d.kind, version: d.version });
    return Object.keys(obj(obj(obj(op)['requestBody'])['content']));
  };
  assert.deepEqual(types(vm), ['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml']);
  assert.deepEqual(types(configMap), ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/apply-patch+yaml']);
});

test('paths cover collection, item, all-namespaces list and status, with actions', () => {
  const paths = obj(wire([vm])['paths']);
  const base = '/apis/kubevirt.io/v1';
  assert.deepEqual(Object.keys(paths).sort(), [
    `${base}/namespaces/{namespace}/virtualmachines`,
    `${base}/namespaces/{namespace}/virtualmachines/{name}`,
    `${base}/namespaces/{namespace}/virtualmachines/{name}/status`,
    `${base}/virtualmachines`,
  ]);
  const item = obj(paths[`${base}/namespaces/{namespace}/virtualmachines/{name}`]);
  assert.deepEqual(['get', 'put', 'patch', 'delete'].map((m) => obj(item[m])['x-kubernetes-action']), ['get', 'put', 'patch', 'delete']);
  assert.equal(obj(item['get'])['operationId'], 'readKubevirtIoV1NamespacedVirtualMachine');
  assert.equal(obj(obj(paths[`${base}/virtualmachines`])['get'])['operationId'], 'listKubevirtIoV1VirtualMachineForAllNamespaces');
  const cluster = obj(wire([namespace])['paths']);
  assert.ok(cluster['/api/v1/namespaces/{name}'] !== undefined && cluster['/api/v1/namespaces'] !== undefined);
});

test('verbs limit the operations', () => {
  const readOnly = { ...configMap, verbs: ['get', 'list', 'watch'] };
  const item = obj(obj(wire([readOnly])['paths'])['/api/v1/namespaces/{namespace}/configmaps/{name}']);
  assert.deepEqual(Object.keys(item).filter((k) => k !== 'parameters'), ['get']);
});

test('component schemas carry their GVK; metadata refers to the shared ObjectMeta', () => {
  const schemas = obj(obj(wire([vm, configMap])['components'])['schemas']);
  const vmSchema = obj(schemas['io.kubevirt.v1.VirtualMachine']);
  assert.deepEqual(vmSchema['x-kubernetes-group-version-kind'], [{ group: 'kubevirt.io', kind: 'VirtualMachine', version: 'v1' }]);
  assert.deepEqual(obj(schemas['io.kubevirt.v1.VirtualMachineList'])['x-kubernetes-group-version-kind'], [{ group: 'kubevirt.io', kind: 'VirtualMachineList', version: 'v1' }]);
  assert.deepEqual(obj(schemas['io.k8s.api.core.v1.ConfigMap'])['x-kubernetes-group-version-kind'], [{ group: '', kind: 'ConfigMap', version: 'v1' }]);
  assert.deepEqual(obj(obj(vmSchema['properties'])['metadata'])['allOf'], [{ $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' }]);
  assert.ok(obj(obj(schemas['io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta'])['properties'])['labels']);
});

test('explain-style lookups reach nested fields and metadata', () => {
  const doc = wire([vm, configMap]);
  const domain = explain(doc, '/apis/kubevirt.io/v1', 'virtualmachines', ['spec', 'template', 'spec', 'domain']);
  assert.ok(obj(domain['properties'])['devices'] !== undefined);
  assert.match(String(domain['description']), /./);
  const disks = explain(doc, '/apis/kubevirt.io/v1', 'virtualmachines', ['spec', 'template', 'spec', 'domain', 'devices', 'disks']);
  assert.deepEqual(disks['required'], ['name']);
  const meta = explain(doc, '/apis/kubevirt.io/v1', 'virtualmachines', ['metadata']);
  assert.ok(obj(meta['properties'])['annotations'] !== undefined);
  const data = explain(doc, '/api/v1', 'configmaps', ['data']);
  assert.equal(data['type'], 'object');
});

test('a kind without a schema is documented as an open object', () => {
  const open = def({ group: 'example.com', version: 'v1', kind: 'Thing', plural: 'things' });
  const schema = obj(obj(obj(wire([open])['components'])['schemas'])['com.example.v1.Thing']);
  assert.equal(schema['x-kubernetes-preserve-unknown-fields'], true);
  assert.ok(obj(schema['properties'])['metadata'] !== undefined);
});
