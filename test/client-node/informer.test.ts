/**
 * @kubernetes/client-node's informer (list + watch) against a real `vireo
 * server` process on SQLite: it sees every change, including changes made
 * right after a server restart while it is still reconnecting.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { freePort, startServerProcess } from '../../src/testing/process.js';
import type { ServerProcess } from '../../src/testing/process.js';
import { eventually } from '../../src/testing/wait.js';

function configMap(name: string): k8s.V1ConfigMap {
  const cm = new k8s.V1ConfigMap();
  cm.metadata = new k8s.V1ObjectMeta();
  cm.metadata.name = name;
  cm.data = { v: '1' };
  return cm;
}

let dir: string;
let port: number;
let server: ServerProcess;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vireo-informer-'));
  port = await freePort();
  server = await startServerProcess({ dataDir: join(dir, 'data'), port });
});

after(async () => {
  server.child.kill('SIGKILL');
  await server.exited;
  rmSync(dir, { recursive: true, force: true });
});

test('client-node informer lists, watches and survives a server restart without missing an event', async () => {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(server.kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const informer = k8s.makeInformer(kc, '/api/v1/namespaces/default/configmaps', () => core.listNamespacedConfigMap({ namespace: 'default' }));
  const seen: string[] = [];
  const cache = new Map<string, string>();
  informer.on('add', (cm) => {
    seen.push(`add ${cm.metadata?.name ?? ''}`);
    cache.set(cm.metadata?.name ?? '', cm.data?.v ?? '');
  });
  informer.on('update', (cm) => {
    seen.push(`update ${cm.metadata?.name ?? ''} ${cm.data?.v ?? ''}`);
    cache.set(cm.metadata?.name ?? '', cm.data?.v ?? '');
  });
  informer.on('delete', (cm) => {
    seen.push(`delete ${cm.metadata?.name ?? ''}`);
    cache.delete(cm.metadata?.name ?? '');
  });
  let errors = 0;
  let stopped = false;
  // An informer stops on a connection error; the usual client pattern is to start it again.
  informer.on('error', () => {
    errors++;
    if (!stopped) setTimeout(() => void informer.start().catch(() => undefined), 100);
  });
  await informer.start();

  for (let i = 0; i < 10; i++) await core.createNamespacedConfigMap({ namespace: 'default', body: configMap(`before-${i}`) });
  await eventually(() => seen.filter((s) => s.startsWith('add before-')).length === 10, { what: 'adds before the restart' });

  server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0, `clean exit on SIGTERM:\n${server.output()}`);
  server = await startServerProcess({ dataDir: join(dir, 'data'), port });

  // Changes made at once after the restart, while the informer may still be reconnecting.
  const coreAfter = (() => {
    const k = new k8s.KubeConfig();
    k.loadFromFile(server.kubeconfig);
    return k.makeApiClient(k8s.CoreV1Api);
  })();
  for (let i = 0; i < 10; i++) await coreAfter.createNamespacedConfigMap({ namespace: 'default', body: configMap(`after-${i}`) });
  await coreAfter.patchNamespacedConfigMap(
    { namespace: 'default', name: 'before-0', body: { data: { v: '2' } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  await coreAfter.deleteNamespacedConfigMap({ namespace: 'default', name: 'before-1' });

  await eventually(() => seen.includes('delete before-1') && seen.includes('update before-0 2') && seen.filter((s) => s.startsWith('add after-')).length === 10, {
    timeoutMs: 30_000,
    what: `every change after the restart (seen: ${seen.slice(-5).join('; ')})`,
  });
  stopped = true;
  await informer.stop();

  const live = await coreAfter.listNamespacedConfigMap({ namespace: 'default' });
  const liveNames = live.items.map((c) => c.metadata?.name ?? '').sort();
  assert.deepEqual([...cache.keys()].sort(), liveNames, 'the informer cache equals the server state');
  assert.equal(cache.get('before-0'), '2');
  assert.equal(seen.filter((s) => s === 'add after-3').length, 1, 'no duplicate adds');
  assert.ok(errors >= 1, 'the restart was seen as a connection error (the test really restarted the server)');
});
