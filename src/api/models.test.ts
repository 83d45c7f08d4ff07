import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JSONSchemaProps } from './resource.js';
import { hasModel, modelSchema } from './models.js';

/** Follows `path` (property names; `[]` for array items, `{}` for map values) through a schema. */
function at(schema: JSONSchemaProps, ...path: string[]): JSONSchemaProps {
  let node = schema;
  for (const step of path) {
    const next =
      step === '[]' ? node.items : step === '{}' ? (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined) : node.properties?.[step];
    if (next === undefined) assert.fail(`no ${step} in ${path.join('.')}`);
    node = next;
  }
  return node;
}

function walk(node: unknown, visit: (n: Record<string, unknown>) => void, seen = new Set<unknown>()): void {
  if (typeof node !== 'object' || node === null || seen.has(node)) return;
  seen.add(node);
  if (!Array.isArray(node)) visit(node as Record<string, unknown>);
  for (const v of Object.values(node)) walk(v, visit, seen);
}

test('models are found by interface name or package-qualified name', () => {
  for (const name of ['V1VirtualMachine', 'V1beta1DataVolume', 'IoK8sApiCoreV1ConfigMap', 'IoK8sApiCoordinationV1Lease', 'kubevirt:V1ResourceRequirements', 'cdi:V1beta1DataVolumeSpec']) {
    assert.ok(hasModel(name), name);
  }
  assert.equal(hasModel('V1NoSuchThing'), false);
  assert.throws(() => modelSchema('V1NoSuchThing'), /unknown OpenAPI model "V1NoSuchThing"/);
});

test('a model is fully inlined, cached and frozen', () => {
  const vm = modelSchema('V1VirtualMachine');
  assert.equal(modelSchema('V1VirtualMachine'), vm);
  assert.ok(Object.isFrozen(vm) && Object.isFrozen(at(vm, 'spec', 'template', 'spec', 'domain')));
  walk(vm, (n) => {
    assert.equal(n['$ref'], undefined);
  });
  assert.equal(vm.type, 'object');
  assert.deepEqual(vm.required, ['spec']);
  assert.match(at(vm, 'spec').description ?? '', /VirtualMachine/);
  assert.deepEqual(at(vm, 'spec').required, ['template']);
});

test('numbers are integers unless the text says fractional', () => {
  const vm = modelSchema('V1VirtualMachine');
  assert.equal(at(vm, 'spec', 'template', 'spec', 'domain', 'cpu', 'cores').type, 'integer');
  assert.equal(at(vm, 'spec', 'template', 'spec', 'terminationGracePeriodSeconds').type, 'integer');
  assert.equal(at(modelSchema('V1TokenBucketRateLimiter'), 'qps').type, 'number');
  assert.equal(at(modelSchema('V1VirtualMachineInstanceGuestOSUser'), 'loginTime').type, 'number');
});

test('quantities and IntOrString accept integers and strings; times are nullable date-times', () => {
  const vmi = modelSchema('V1VirtualMachineInstance');
  const requests = at(vmi, 'spec', 'domain', 'resources', 'requests', '{}');
  assert.equal(requests['x-kubernetes-int-or-string'], true);
  assert.equal(requests.type, undefined);
  assert.ok(new RegExp(requests.pattern ?? '').test('1.5Gi'));
  assert.equal(at(vmi, 'spec', 'domain', 'memory', 'guest')['x-kubernetes-int-or-string'], true);
  assert.equal(at(modelSchema('V1beta1VirtualMachinePool'), 'spec', 'maxUnavailable')['x-kubernetes-int-or-string'], true);
  assert.equal(at(modelSchema('IoK8sApiCoreV1Pod'), 'spec', 'containers', '[]', 'ports', '[]', 'containerPort').type, 'integer');
  const created = at(vmi, 'metadata', 'creationTimestamp');
  assert.deepEqual([created.type, created.format, created.nullable], ['string', 'date-time', true]);
});

test('core types come from the Kubernetes package, which kept what the copies lost', () => {
  // KubeVirt's copy of HTTPGetAction lost `port` (its OpenAPI type is a list); Kubernetes' has it.
  const probe = at(modelSchema('V1VirtualMachineInstance'), 'spec', 'readinessProbe', 'httpGet');
  assert.equal(at(probe, 'port')['x-kubernetes-int-or-string'], true);
  assert.deepEqual(probe.required, ['port']);
});

test('condition timestamps dropped by the generator are restored', () => {
  const condition = at(modelSchema('V1VirtualMachine'), 'status', 'conditions', '[]');
  for (const name of ['lastProbeTime', 'lastTransitionTime']) {
    assert.deepEqual(at(condition, name), { type: 'string', format: 'date-time', nullable: true });
  }
});

test('metadata: ObjectMeta at the top, open and nullable in templates', () => {
  const vm = modelSchema('V1VirtualMachine');
  const top = at(vm, 'metadata');
  assert.ok(top.properties?.['labels'] !== undefined && top.properties['ownerReferences'] !== undefined);
  assert.equal(top['x-kubernetes-preserve-unknown-fields'], undefined);
  const template = at(vm, 'spec', 'template', 'metadata');
  assert.equal(template.nullable, true);
  assert.equal(template['x-kubernetes-preserve-unknown-fields'], true);
  assert.ok(template.properties?.['labels'] !== undefined);
});

test('JSON keys are the wire names, not the TypeScript ones', () => {
  assert.ok(at(modelSchema('IoK8sApimachineryPkgApisMetaV1ListMeta'), 'continue'));
  assert.ok(at(modelSchema('V1VirtualMachineInstance'), 'status', 'VSOCKCID'));
  assert.ok(at(modelSchema('V1beta1CDIConfig'), 'spec', 'importProxy', 'HTTPProxy'));
  const props = modelSchema('IoK8sApiextensionsApiserverPkgApisApiextensionsV1JSONSchemaProps').properties ?? {};
  for (const key of ['default', 'enum', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-int-or-string', '$ref']) assert.ok(key in props, key);
});

test('untyped values (RawExtension, JSON) accept anything', () => {
  const jsonProps = modelSchema('IoK8sApiextensionsApiserverPkgApisApiextensionsV1JSONSchemaProps');
  const value = at(jsonProps, 'default');
  assert.equal(value['x-kubernetes-preserve-unknown-fields'], true);
  assert.equal(value.type, undefined);
});

test('recursive models are cut with preserve-unknown-fields after a few levels', () => {
  const crd = modelSchema('IoK8sApiextensionsApiserverPkgApisApiextensionsV1CustomResourceDefinition');
  const root = at(crd, 'spec', 'versions', '[]', 'schema', 'openAPIV3Schema');
  const level2 = at(root, 'properties', '{}');
  const level3 = at(level2, 'properties', '{}');
  assert.ok(level3.properties !== undefined, 'expanded three levels deep');
  const cut = at(level3, 'properties', '{}');
  assert.equal(cut['x-kubernetes-preserve-unknown-fields'], true);
  assert.equal(cut.properties, undefined);
  assert.ok(JSON.stringify(crd).length > 0);
});

test('no enums: KubeVirt\'s CRDs do not restrict these values', () => {
  const vm = modelSchema('V1VirtualMachine');
  walk(vm, (n) => {
    assert.equal(n['enum'], undefined);
  });
});

test('fields newer than the package are added', () => {
  assert.equal(at(modelSchema('V1beta1DataVolume'), 'spec', 'source', 'http', 'insecureSkipVerify').type, 'boolean');
  assert.equal(at(modelSchema('V1VirtualMachine'), 'spec', 'dataVolumeTemplates', '[]', 'spec', 'source', 'http', 'insecureSkipVerify').type, 'boolean');
});
