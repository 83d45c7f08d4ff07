/**
 * Deleting and waiting with kubectl: `delete --wait` held by a finalizer,
 * cascading deletion (foreground, orphan) through the garbage collector,
 * `wait` for a condition, a JSONPath value and deletion, and namespace
 * deletion that takes the namespace's contents with it.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type { Kubectl } from './support.js';
import { eventually, kubectlSuites, vmManifest } from './support.js';

function configMap(name: string, extraMetadata = ''): string {
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n${extraMetadata}`;
}

interface Meta {
  uid: string;
  finalizers?: string[];
  deletionTimestamp?: string;
  ownerReferences?: { name: string }[];
}

async function meta(k: Kubectl, args: string[]): Promise<Meta> {
  return (await k.json(args)).metadata as Meta;
}

async function isGone(k: Kubectl, args: string[]): Promise<boolean> {
  const r = await k.run(['get', ...args, '-o', 'name']);
  if (r.code === 0) return false;
  assert.match(r.stderr, /^Error from server \(NotFound\): /, r.stderr);
  return true;
}

/** A ConfigMap owned by `owner` (a VirtualMachine) that blocks its owner's foreground deletion. */
function dependent(name: string, owner: string, uid: string, finalizer: boolean): string {
  return configMap(
    name,
    `  ownerReferences:\n  - {apiVersion: kubevirt.io/v1, kind: VirtualMachine, name: ${owner}, uid: ${uid}, controller: true, blockOwnerDeletion: true}\n${finalizer ? '  finalizers: [e2e.vireo.dev/hold]\n' : ''}`,
  );
}

const readyFalse = JSON.stringify({ status: { printableStatus: 'Stopped', conditions: [{ type: 'Ready', status: 'False' }] } });

kubectlSuites('kubectl delete and wait', (k) => {
  const ns = 'deletes';
  before(() => k.namespace(ns));

  test('delete without finalizers removes the object at once', async () => {
    await k.apply(configMap('plain'), '-n', ns);
    assert.equal(await k.ok(['delete', 'cm', 'plain', '-n', ns]), 'configmap "plain" deleted\n');
    assert.ok(await isGone(k, ['cm', 'plain', '-n', ns]));
  });

  test('delete --wait waits while a finalizer holds the object, and returns once another client removes it', async () => {
    await k.apply(configMap('held', '  finalizers: [e2e.vireo.dev/hold]\n'), '-n', ns);
    const del = k.background(['delete', 'cm', 'held', '-n', ns, '--wait=true', '--timeout=30s', '-v=6']);
    await del.watching();
    const held = await meta(k, ['cm', 'held', '-n', ns]);
    assert.ok(held.deletionTimestamp !== undefined, 'the object is marked for deletion');
    assert.deepEqual(held.finalizers, ['e2e.vireo.dev/hold']);
    assert.equal(del.code, undefined, 'delete is still waiting');
    await k.ok(['patch', 'cm', 'held', '-n', ns, '--type=json', '-p', '[{"op":"remove","path":"/metadata/finalizers"}]']);
    const r = await del.result();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'configmap "held" deleted\n');
    assert.ok(await isGone(k, ['cm', 'held', '-n', ns]));
  });

  test('delete --cascade=foreground deletes the blocking dependent first, then the owner', async () => {
    await k.apply(vmManifest('owner-fg'), '-n', ns);
    const { uid } = await meta(k, ['vm', 'owner-fg', '-n', ns]);
    await k.apply(dependent('dep-fg', 'owner-fg', uid, true), '-n', ns);
    const del = k.background(['delete', 'vm', 'owner-fg', '-n', ns, '--cascade=foreground', '--timeout=30s', '-v=6']);
    await del.watching();
    const owner = await meta(k, ['vm', 'owner-fg', '-n', ns]);
    assert.deepEqual(owner.finalizers, ['foregroundDeletion']);
    assert.ok(owner.deletionTimestamp !== undefined);
    // The garbage collector deletes the dependent; its own finalizer keeps it (and so the owner) for now.
    await eventually(async () => (await meta(k, ['cm', 'dep-fg', '-n', ns])).deletionTimestamp, { what: 'the GC to delete the dependent' });
    assert.equal(del.code, undefined, 'the owner waits for its blocking dependent');
    assert.equal((await meta(k, ['vm', 'owner-fg', '-n', ns])).uid, uid);
    await k.ok(['patch', 'cm', 'dep-fg', '-n', ns, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
    const r = await del.result();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'virtualmachine.kubevirt.io "owner-fg" deleted\n');
    assert.ok(await isGone(k, ['cm', 'dep-fg', '-n', ns]));
    assert.ok(await isGone(k, ['vm', 'owner-fg', '-n', ns]));
  });

  test('delete --cascade=orphan keeps the dependent and strips its owner reference', async () => {
    await k.apply(vmManifest('owner-or'), '-n', ns);
    const { uid } = await meta(k, ['vm', 'owner-or', '-n', ns]);
    await k.apply(dependent('dep-or', 'owner-or', uid, false), '-n', ns);
    assert.equal(await k.ok(['delete', 'vm', 'owner-or', '-n', ns, '--cascade=orphan']), 'virtualmachine.kubevirt.io "owner-or" deleted\n');
    assert.ok(await isGone(k, ['vm', 'owner-or', '-n', ns]));
    // The orphan finalizer goes only after the references are stripped, so this holds as soon as the owner is gone.
    const dep = await meta(k, ['cm', 'dep-or', '-n', ns]);
    assert.equal(dep.ownerReferences, undefined);
    assert.equal(dep.deletionTimestamp, undefined);
  });

  test('wait --for=condition=Ready returns once the condition is set through the status subresource', async () => {
    await k.apply(vmManifest('vm-wait'), '-n', ns);
    await k.ok(['patch', 'vm', 'vm-wait', '-n', ns, '--subresource=status', '--type=merge', '-p', readyFalse]);
    const wait = k.background(['wait', '--for=condition=Ready', 'vm/vm-wait', '-n', ns, '--timeout=30s', '-v=6']);
    await wait.watching();
    assert.equal(wait.code, undefined, 'wait is still waiting');
    const ready = JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True' }] } });
    await k.ok(['patch', 'vm', 'vm-wait', '-n', ns, '--subresource=status', '--type=merge', '-p', ready]);
    const r = await wait.result();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'virtualmachine.kubevirt.io/vm-wait condition met\n');
  });

  test('wait --for=condition times out with an error when the condition never comes', async () => {
    await k.ok(['patch', 'vm', 'vm-wait', '-n', ns, '--subresource=status', '--type=merge', '-p', readyFalse]);
    const r = await k.fails(['wait', '--for=condition=Ready', 'vm/vm-wait', '-n', ns, '--timeout=1s']);
    assert.equal(r.stderr, 'error: timed out waiting for the condition on virtualmachines/vm-wait\n');
  });

  test('wait --for=jsonpath returns once the value matches', async () => {
    const wait = k.background(['wait', '--for=jsonpath={.status.printableStatus}=Running', 'vm/vm-wait', '-n', ns, '--timeout=30s', '-v=6']);
    await wait.watching();
    assert.equal(wait.code, undefined, 'wait is still waiting');
    await k.ok(['patch', 'vm', 'vm-wait', '-n', ns, '--subresource=status', '--type=merge', '-p', '{"status":{"printableStatus":"Running"}}']);
    const r = await wait.result();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'virtualmachine.kubevirt.io/vm-wait condition met\n');
  });

  test('wait --for=delete returns once the object is gone', async () => {
    await k.apply(configMap('doomed', '  finalizers: [e2e.vireo.dev/hold]\n'), '-n', ns);
    assert.equal(await k.ok(['delete', 'cm', 'doomed', '-n', ns, '--wait=false']), 'configmap "doomed" deleted\n');
    const wait = k.background(['wait', '--for=delete', 'cm/doomed', '-n', ns, '--timeout=30s', '-v=6']);
    await wait.watching();
    assert.equal(wait.code, undefined, 'wait is still waiting');
    await k.ok(['patch', 'cm', 'doomed', '-n', ns, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
    const r = await wait.result();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'configmap/doomed condition met\n');
  });

  test('delete ns --wait removes the namespace and everything in it', async () => {
    const doomed = await k.namespace('doomed-ns');
    const dv = `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: disk
spec:
  source: {blank: {}}
  storage:
    resources:
      requests: {storage: 1Gi}
`;
    assert.equal(
      await k.apply(`${vmManifest('vm-in-ns')}---\n${configMap('cm-in-ns')}---\n${dv}`, '-n', doomed),
      'virtualmachine.kubevirt.io/vm-in-ns created\nconfigmap/cm-in-ns created\ndatavolume.cdi.kubevirt.io/disk created\n',
    );
    assert.equal(await k.ok(['delete', 'ns', doomed, '--wait=true', '--timeout=60s']), `namespace "${doomed}" deleted\n`);
    assert.ok(await isGone(k, ['ns', doomed]));
    for (const prefix of ['/registry/kubevirt.io/virtualmachines/', '/registry/core/configmaps/', '/registry/cdi.kubevirt.io/datavolumes/']) {
      const left = await k.test.store.list(`${prefix}${doomed}/`);
      assert.deepEqual(left.items.map((i) => i.key), [], `nothing is left under ${prefix}${doomed}/`);
    }
    const recreate = await k.fails(['apply', '-n', doomed, '-f', '-'], { stdin: configMap('late') });
    assert.match(recreate.stderr, new RegExp(`namespaces "${doomed}" not found`));
  });
});
