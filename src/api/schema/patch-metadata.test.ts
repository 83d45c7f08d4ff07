import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinResources } from '../kinds/builtin.js';
import { modelSchema } from '../models.js';
import { applyStrategicMergePatch } from '../patch/strategic-merge.js';
import type { ResourceDef } from '../resource.js';
import { withBuiltinListMetadata } from './patch-metadata.js';

function builtin(kind: string): ResourceDef {
  const def = builtinResources().find((d) => d.group === '' && d.kind === kind);
  assert.ok(def !== undefined, `no built-in ${kind}`);
  return def;
}

test('built-in schemas carry the patch strategy and merge keys of Kubernetes types', () => {
  const cm = builtin('ConfigMap').schema;
  assert.equal(cm?.properties?.metadata?.properties?.finalizers?.['x-kubernetes-patch-strategy'], 'merge');
  assert.equal(cm?.properties?.metadata?.properties?.ownerReferences?.['x-kubernetes-patch-merge-key'], 'uid');
  const ports = builtin('Service').schema?.properties?.spec?.properties?.ports;
  assert.equal(ports?.['x-kubernetes-patch-strategy'], 'merge');
  assert.equal(ports?.['x-kubernetes-patch-merge-key'], 'port');
  assert.equal(builtin('Namespace').schema?.properties?.status?.properties?.conditions?.['x-kubernetes-patch-merge-key'], 'type');
});

test('the shared, frozen model schema is copied, not changed', () => {
  const model = modelSchema('IoK8sApiCoreV1Service');
  const out = withBuiltinListMetadata(model, '', 'Service');
  assert.notEqual(out, model);
  assert.equal(model.properties?.spec?.properties?.ports?.['x-kubernetes-patch-strategy'], undefined);
  assert.equal(model.properties?.metadata?.properties?.finalizers?.['x-kubernetes-patch-strategy'], undefined);
  // Fields without metadata stay the shared objects.
  assert.equal(out.properties?.spec?.properties?.selector, model.properties?.spec?.properties?.selector);
});

test('a strategic merge patch adds a finalizer to a ConfigMap instead of replacing the list', () => {
  const current = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', finalizers: ['a.io/x'] } };
  const patched = applyStrategicMergePatch(current, { metadata: { finalizers: ['b.io/y'] } }, builtin('ConfigMap').schema) as typeof current;
  assert.deepEqual(patched.metadata.finalizers, ['b.io/y', 'a.io/x']);
});

test('a strategic merge patch merges Service ports by port', () => {
  const current = { spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'ssh', port: 22, targetPort: 2222 }] } };
  const patched = applyStrategicMergePatch(current, { spec: { ports: [{ port: 80, targetPort: 9090 }] } }, builtin('Service').schema) as typeof current;
  assert.deepEqual(patched.spec.ports, [
    { name: 'http', port: 80, targetPort: 9090 },
    { name: 'ssh', port: 22, targetPort: 2222 },
  ]);
});
