import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/object.js';
import { isPlainObject } from '../../api/object.js';
import { silentLogger } from '../../log/logger.js';
import { configMapDef, eventually, namespaceDef, openHarness, widgetBetaDef, widgetDef } from '../gc/test-support.js';
import type { Harness } from '../gc/test-support.js';
import { NamespaceController } from './controller.js';

async function withController(body: (h: Harness, controller: NamespaceController) => Promise<void>, start = true): Promise<void> {
  const h = await openHarness();
  const controller = new NamespaceController(h.objects, h.registry, silentLogger);
  if (start) await controller.start();
  try {
    await body(h, controller);
  } finally {
    await controller.stop();
    await h.close();
  }
}

async function fill(h: Harness, namespace: string): Promise<void> {
  await h.objects.create(configMapDef, namespace, { metadata: { name: 'a' } });
  await h.objects.create(configMapDef, namespace, { metadata: { name: 'b' } });
  await h.objects.create(widgetBetaDef, namespace, { metadata: { name: 'w' } });
}

function condition(ns: KObject | undefined, type: string): Record<string, unknown> | undefined {
  const status = ns?.status;
  if (!isPlainObject(status) || !Array.isArray(status.conditions)) return undefined;
  return (status.conditions as unknown[]).filter(isPlainObject).find((c) => c.type === type);
}

test('a new namespace is Active and carries the kubernetes finalizer', () =>
  withController(async (h) => {
    const ns = await h.objects.get(namespaceDef, undefined, 'ns');
    assert.deepEqual(ns.spec, { finalizers: ['kubernetes'] });
    assert.deepEqual(ns.status, { phase: 'Active' });
  }));

test('deleting a namespace deletes its content, then the namespace', () =>
  withController(async (h) => {
    await fill(h, 'ns');
    await h.objects.create(namespaceDef, undefined, { metadata: { name: 'other' } });
    await h.objects.create(configMapDef, 'other', { metadata: { name: 'a' } });

    const deleted = await h.objects.delete(namespaceDef, undefined, 'ns');
    assert.equal(deleted.pending, true);
    assert.equal(isPlainObject(deleted.object.status) ? deleted.object.status.phase : undefined, 'Terminating');
    await eventually(async () => (await h.objects.tryGet(namespaceDef, undefined, 'ns')) === undefined, 'the namespace to go');
    assert.equal((await h.objects.list(configMapDef, 'ns')).items.length, 0);
    assert.equal((await h.objects.list(widgetDef, 'ns')).items.length, 0);
    assert.notEqual(await h.objects.tryGet(configMapDef, 'other', 'a'), undefined, 'another namespace keeps its content');
  }));

test('content with a foreign finalizer holds the namespace in Terminating until it is removed', () =>
  withController(async (h) => {
    await fill(h, 'ns');
    await h.objects.create(configMapDef, 'ns', { metadata: { name: 'held', finalizers: ['example.com/hold'] } });
    await h.objects.delete(namespaceDef, undefined, 'ns');

    await eventually(async () => (await h.objects.list(configMapDef, 'ns')).items.length === 1, 'the unheld content to go');
    await eventually(
      async () => condition(await h.objects.tryGet(namespaceDef, undefined, 'ns'), 'NamespaceFinalizersRemaining')?.status === 'True',
      'the namespace to report the remaining finalizer',
    );
    const ns = await h.objects.get(namespaceDef, undefined, 'ns');
    assert.equal(isPlainObject(ns.status) ? ns.status.phase : undefined, 'Terminating');
    assert.deepEqual(ns.spec, { finalizers: ['kubernetes'] });
    assert.deepEqual(condition(ns, 'NamespaceFinalizersRemaining')?.message, 'Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances');
    assert.deepEqual(condition(ns, 'NamespaceContentRemaining')?.message, 'Some resources are remaining: configmaps. has 1 resource instances');
    assert.equal(condition(ns, 'NamespaceDeletionContentFailure')?.status, 'False');
    const held = await h.objects.get(configMapDef, 'ns', 'held');
    assert.notEqual(held.metadata.deletionTimestamp, undefined);

    await h.objects.replace(configMapDef, held, { ...held, metadata: { ...held.metadata, finalizers: [] } });
    await eventually(async () => (await h.objects.tryGet(namespaceDef, undefined, 'ns')) === undefined, 'the namespace to go once the finalizer is removed');
  }));

test('a namespace left Terminating before start is finished', () =>
  withController(async (h, controller) => {
    await fill(h, 'ns');
    await h.objects.delete(namespaceDef, undefined, 'ns');
    assert.notEqual(await h.objects.tryGet(namespaceDef, undefined, 'ns'), undefined);
    await controller.start();
    await eventually(async () => (await h.objects.tryGet(namespaceDef, undefined, 'ns')) === undefined, 'the namespace to go');
    assert.equal((await h.objects.list(configMapDef, 'ns')).items.length, 0);
  }, false));

test('a namespace that is not being deleted is left alone', () =>
  withController(async (h, controller) => {
    await fill(h, 'ns');
    controller.enqueue('ns');
    await h.objects.create(namespaceDef, undefined, { metadata: { name: 'gone' } });
    await h.objects.delete(namespaceDef, undefined, 'gone');
    // 'ns' was queued first and needs one read where 'gone' needs a full pass, so it has been looked at by now.
    await eventually(async () => (await h.objects.tryGet(namespaceDef, undefined, 'gone')) === undefined, 'the empty namespace to go');
    assert.equal((await h.objects.list(configMapDef, 'ns')).items.length, 2);
  }));
