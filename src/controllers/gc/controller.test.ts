import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/object.js';
import type { ResourceDef } from '../../api/resource.js';
import { silentLogger } from '../../log/logger.js';
import { GarbageCollector } from './controller.js';
import { clusterDef, configMapDef, eventually, openHarness, ownerRef, widgetBetaDef, widgetDef } from './test-support.js';
import type { Harness } from './test-support.js';

interface Fixture extends Harness {
  gc: GarbageCollector;
  make(def: ResourceDef, name: string, metadata?: Record<string, unknown>): Promise<KObject>;
  read(def: ResourceDef, name: string): Promise<KObject | undefined>;
}

/** Runs `body` against a started collector, or one the body starts itself when `start` is false. */
async function withGc(body: (f: Fixture) => Promise<void>, start = true): Promise<void> {
  const h = await openHarness();
  const gc = new GarbageCollector(h.objects, h.registry, silentLogger);
  const ns = (def: ResourceDef): string | undefined => (def.namespaced ? 'ns' : undefined);
  const f: Fixture = {
    ...h,
    gc,
    make: async (def, name, metadata = {}) => (await h.objects.create(def, ns(def), { metadata: { name, ...metadata } })).object,
    read: (def, name) => h.objects.tryGet(def, ns(def), name),
  };
  if (start) await gc.start();
  try {
    await body(f);
  } finally {
    await gc.stop();
    await h.close();
  }
}

test('background: a dependent whose only owner is deleted goes too', () =>
  withGc(async (f) => {
    const owner = await f.make(configMapDef, 'owner');
    await f.make(configMapDef, 'dep', { ownerReferences: [ownerRef(owner)] });
    await f.make(widgetDef, 'widget-dep', { ownerReferences: [ownerRef(owner)] });
    await f.objects.delete(configMapDef, 'ns', 'owner', { propagationPolicy: 'Background' });
    await eventually(async () => (await f.read(configMapDef, 'dep')) === undefined, 'the dependent configmap to be deleted');
    await eventually(async () => (await f.read(widgetDef, 'widget-dep')) === undefined, 'the dependent widget to be deleted');
  }));

test('background: a dependent with another live owner only loses the dangling reference', () =>
  withGc(async (f) => {
    const first = await f.make(configMapDef, 'first');
    const second = await f.make(widgetDef, 'second');
    await f.make(configMapDef, 'dep', { ownerReferences: [ownerRef(first), ownerRef(second)] });
    await f.objects.delete(configMapDef, 'ns', 'first');
    await eventually(async () => (await f.read(configMapDef, 'dep'))?.metadata.ownerReferences?.length === 1, 'the dangling reference to be removed');
    const dep = await f.read(configMapDef, 'dep');
    assert.deepEqual(dep?.metadata.ownerReferences?.map((r) => r.uid), [second.metadata.uid]);
    assert.equal(dep?.metadata.deletionTimestamp, undefined);
  }));

test('background: a cluster-scoped owner takes its namespaced dependents along', () =>
  withGc(async (f) => {
    const owner = await f.make(clusterDef, 'c1');
    await f.make(configMapDef, 'dep', { ownerReferences: [ownerRef(owner)] });
    await f.objects.delete(clusterDef, undefined, 'c1');
    await eventually(async () => (await f.read(configMapDef, 'dep')) === undefined, 'the dependent to be deleted');
  }));

test('foreground: the owner stays until its blocking dependents are gone', () =>
  withGc(async (f) => {
    const owner = await f.make(configMapDef, 'owner');
    await f.make(configMapDef, 'held', { ownerReferences: [ownerRef(owner, { blockOwnerDeletion: true })], finalizers: ['example.com/hold'] });
    await f.make(configMapDef, 'free', { ownerReferences: [ownerRef(owner, { blockOwnerDeletion: true })] });
    await f.objects.delete(configMapDef, 'ns', 'owner', { propagationPolicy: 'Foreground' });
    await eventually(async () => (await f.read(configMapDef, 'free')) === undefined, 'the unheld dependent to be deleted');
    await eventually(async () => (await f.read(configMapDef, 'held'))?.metadata.deletionTimestamp !== undefined, 'the held dependent to be marked for deletion');
    const waiting = await f.read(configMapDef, 'owner');
    assert.notEqual(waiting?.metadata.deletionTimestamp, undefined);
    assert.deepEqual(waiting?.metadata.finalizers, ['foregroundDeletion']);

    const held = await f.objects.get(configMapDef, 'ns', 'held');
    await f.objects.replace(configMapDef, held, { ...held, metadata: { ...held.metadata, finalizers: [] } });
    await eventually(async () => (await f.read(configMapDef, 'owner')) === undefined, 'the owner to go once its dependents are gone');
  }));

test('foreground: dependents that do not block owner deletion do not hold the owner', () =>
  withGc(async (f) => {
    const owner = await f.make(configMapDef, 'owner');
    await f.make(configMapDef, 'held', { ownerReferences: [ownerRef(owner)], finalizers: ['example.com/hold'] });
    await f.objects.delete(configMapDef, 'ns', 'owner', { propagationPolicy: 'Foreground' });
    await eventually(async () => (await f.read(configMapDef, 'owner')) === undefined, 'the owner to go');
    await eventually(async () => (await f.read(configMapDef, 'held'))?.metadata.deletionTimestamp !== undefined, 'the dependent to be marked for deletion');
  }));

test('foreground: a dependent with dependents of its own is deleted in the foreground too', () =>
  withGc(async (f) => {
    const top = await f.make(configMapDef, 'top');
    const middle = await f.make(widgetDef, 'middle', { ownerReferences: [ownerRef(top, { blockOwnerDeletion: true })] });
    await f.make(configMapDef, 'leaf', { ownerReferences: [ownerRef(middle, { blockOwnerDeletion: true })], finalizers: ['example.com/hold'] });
    await f.objects.delete(configMapDef, 'ns', 'top', { propagationPolicy: 'Foreground' });
    await eventually(async () => (await f.read(configMapDef, 'leaf'))?.metadata.deletionTimestamp !== undefined, 'the leaf to be marked for deletion');
    assert.deepEqual((await f.read(widgetDef, 'middle'))?.metadata.finalizers, ['foregroundDeletion']);
    assert.notEqual(await f.read(configMapDef, 'top'), undefined);

    const leaf = await f.objects.get(configMapDef, 'ns', 'leaf');
    await f.objects.replace(configMapDef, leaf, { ...leaf, metadata: { ...leaf.metadata, finalizers: [] } });
    await eventually(async () => (await f.read(configMapDef, 'top')) === undefined, 'the whole chain to go');
    assert.equal(await f.read(widgetDef, 'middle'), undefined);
  }));

test('orphan: dependents live on without the reference, and the owner goes', () =>
  withGc(async (f) => {
    const owner = await f.make(configMapDef, 'owner');
    const other = await f.make(configMapDef, 'other');
    await f.make(configMapDef, 'dep', { ownerReferences: [ownerRef(owner, { controller: true })] });
    await f.make(widgetDef, 'dep2', { ownerReferences: [ownerRef(owner), ownerRef(other)] });
    await f.objects.delete(configMapDef, 'ns', 'owner', { propagationPolicy: 'Orphan' });
    await eventually(async () => (await f.read(configMapDef, 'owner')) === undefined, 'the owner to go');
    const dep = await f.read(configMapDef, 'dep');
    assert.notEqual(dep, undefined);
    assert.equal(dep?.metadata.ownerReferences, undefined);
    assert.equal(dep?.metadata.deletionTimestamp, undefined);
    const dep2 = await f.read(widgetDef, 'dep2');
    assert.deepEqual(dep2?.metadata.ownerReferences?.map((r) => r.uid), [other.metadata.uid]);
  }));

test('start: references to owners that are gone, or never were, are collected', () =>
  withGc(async (f) => {
    const owner = await f.make(configMapDef, 'owner');
    await f.make(configMapDef, 'dep', { ownerReferences: [ownerRef(owner)] });
    await f.objects.delete(configMapDef, 'ns', 'owner');
    // Same name and kind as a live object, but another uid: that owner is gone.
    await f.make(configMapDef, 'reborn');
    await f.make(configMapDef, 'stale', {
      ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'reborn', uid: '00000000-0000-0000-0000-000000000000' }],
    });
    await f.make(widgetDef, 'never', { ownerReferences: [{ apiVersion: 'example.com/v1beta1', kind: 'Widget', name: 'ghost', uid: 'ghost-uid' }] });
    const keep = await f.make(widgetBetaDef, 'keep');
    await f.make(configMapDef, 'kept', { ownerReferences: [{ ...ownerRef(keep), apiVersion: 'example.com/v1beta1' }] });

    await f.gc.start();
    await eventually(async () => (await f.read(configMapDef, 'dep')) === undefined, 'the dependent of a deleted owner to go');
    await eventually(async () => (await f.read(configMapDef, 'stale')) === undefined, 'the dependent of a replaced owner to go');
    await eventually(async () => (await f.read(widgetDef, 'never')) === undefined, 'the dependent of an owner that never existed to go');
    assert.notEqual(await f.read(configMapDef, 'kept'), undefined);
    assert.notEqual(await f.read(configMapDef, 'reborn'), undefined);
  }, false));

test('a new dependent of an owner that is already gone is collected', () =>
  withGc(async (f) => {
    const owner = await f.make(configMapDef, 'owner');
    await f.objects.delete(configMapDef, 'ns', 'owner');
    await f.make(configMapDef, 'late', { ownerReferences: [ownerRef(owner)] });
    await eventually(async () => (await f.read(configMapDef, 'late')) === undefined, 'the late dependent to go');
  }));
