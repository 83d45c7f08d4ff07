/**
 * What `kubectl get events` tells of DataVolume imports, as CDI tells it:
 * ImportScheduled, ImportInProgress (held mid-download, so the phase is
 * seen) and ImportSucceeded on the DataVolume; a 404 ends in a Warning
 * ImportFailed there and an ErrImportFailed on its claim; a server that
 * answers 500 through two import attempts gives one ErrImportFailed
 * counted twice, then succeeds. The real server, controllers and node
 * agent; no guest boots.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import type { KObject } from '../../src/api/object.js';
import { stringAt } from '../../src/api/kinds/read.js';
import { ensureTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import { cdiAnnotations } from '../../src/storage/import/index.js';
import { startImageServer } from '../../src/testing/image-server.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { eventually } from '../../src/testing/wait.js';
import { startVmEnv } from '../e2e/vm-support.js';
import type { VmEnv } from '../e2e/vm-support.js';

/** The parts of a core/v1 Event the assertions read. */
interface SeenEvent {
  reason: string;
  type: string;
  count: number;
  message: string;
  involvedObject: { kind?: string; name?: string };
}

function httpDv(name: string, url: string): KObject {
  // Bound at once, as CDI's bind.immediate annotation asks: no VM consumes these volumes.
  return { apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', metadata: { name, namespace: 'default', annotations: { [cdiAnnotations.bindImmediate]: 'true' } }, spec: { source: { http: { url } }, storage: { resources: { requests: { storage: '64Mi' } } } } };
}

async function dvPhase(env: VmEnv, name: string, phase: string): Promise<void> {
  let seen: unknown;
  try {
    await eventually(async () => {
      const dv = await env.client.tryGet(resources.dataVolumes, 'default', name);
      seen = dv?.status;
      return stringAt(dv, 'status', 'phase') === phase;
    }, { what: `DataVolume ${name} to be ${phase}`, timeoutMs: 60_000, intervalMs: 100 });
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}; its status: ${JSON.stringify(seen)}`);
  }
}

async function eventsOf(env: VmEnv): Promise<SeenEvent[]> {
  const result = await kubectl(['get', 'events', '-n', 'default', '-o', 'json'], { kubeconfig: env.server.kubeconfig });
  assert.equal(result.code, 0, result.stderr);
  return (JSON.parse(result.stdout) as { items: SeenEvent[] }).items;
}

test('DataVolume imports in Events: scheduled, in progress, succeeded; a 404 fails with a Warning; retries count up', { timeout: 180_000 }, async (t) => {
  const disk = (await ensureTestGuest()).disk;
  const size = (await stat(disk)).size;
  const images = await startImageServer();
  t.after(() => images.stop());
  const env = await startVmEnv(t);
  images.serve('/held.qcow2', { file: disk, holdOnceAfter: Math.floor(size / 2) });
  // Three attempts within one import (src/storage/import/http.ts): six failures are two failed imports, each retried by the runner.
  images.serve('/flaky.qcow2', { file: disk, failWith: { status: 500, times: 6 } });
  for (const [name, path] of [['fetched', '/held.qcow2'], ['missing', '/nothing.qcow2'], ['flaky', '/flaky.qcow2']] as const) {
    const created = await kubectl(['create', '-f', '-'], { kubeconfig: env.server.kubeconfig, stdin: JSON.stringify(httpDv(name, `${images.url}${path}`)) });
    assert.equal(created.code, 0, created.stderr);
  }

  // Held half-way: the DataVolume is seen in progress, then the download is cut and resumes.
  await dvPhase(env, 'fetched', 'ImportInProgress');
  images.breakHeld('/held.qcow2');
  await dvPhase(env, 'fetched', 'Succeeded');
  await dvPhase(env, 'missing', 'Failed');
  await dvPhase(env, 'flaky', 'Succeeded');

  const of = (events: SeenEvent[], kind: string, name: string): SeenEvent[] => events.filter((e) => e.involvedObject.kind === kind && e.involvedObject.name === name);
  const describe = (all: SeenEvent[]): string => all.map((e) => `${e.involvedObject.kind ?? ''}/${e.involvedObject.name ?? ''} ${e.type} ${e.reason} x${e.count}: ${e.message}`).join('\n');
  const events = await eventually(async () => {
    const all = await eventsOf(env);
    const retries = of(all, 'PersistentVolumeClaim', 'flaky').find((e) => e.reason === 'ErrImportFailed');
    const succeeded = ['fetched', 'flaky'].every((name) => of(all, 'DataVolume', name).some((e) => e.reason === 'ImportSucceeded'));
    return retries?.count === 2 && succeeded && of(all, 'DataVolume', 'missing').some((e) => e.reason === 'ImportFailed') ? all : undefined;
  }, { what: 'the Events of the three imports', timeoutMs: 30_000, intervalMs: 250 }).catch(async (err: unknown) => {
    throw new Error(`${err instanceof Error ? err.message : String(err)}:\n${describe(await eventsOf(env))}`);
  });
  const summary = describe(events);

  const fetched = of(events, 'DataVolume', 'fetched');
  for (const reason of ['ImportScheduled', 'ImportInProgress', 'ImportSucceeded']) {
    assert.ok(fetched.some((e) => e.reason === reason && e.type === 'Normal'), `DataVolume fetched has a Normal ${reason}:\n${summary}`);
  }
  // Phase changes, not percentages: one ImportInProgress Event, however far the progress moved.
  assert.equal(fetched.filter((e) => e.reason === 'ImportInProgress').length, 1, summary);
  assert.ok(fetched.every((e) => e.type === 'Normal'), `no Warning for an import that only stalled:\n${summary}`);

  const failed = of(events, 'DataVolume', 'missing').find((e) => e.reason === 'ImportFailed');
  assert.equal(failed?.type, 'Warning', summary);
  const missingClaim = of(events, 'PersistentVolumeClaim', 'missing').find((e) => e.reason === 'ErrImportFailed');
  assert.equal(missingClaim?.type, 'Warning', summary);
  assert.match(missingClaim.message, /404/, 'the claim\'s Event names the status');
  assert.equal(missingClaim.count, 1, `a 404 is not retried:\n${summary}`);

  const retried = of(events, 'PersistentVolumeClaim', 'flaky').find((e) => e.reason === 'ErrImportFailed');
  assert.equal(retried?.type, 'Warning', summary);
  assert.match(retried.message, /500/);
  assert.equal(retried.count, 2, `two failed attempts, one Event counted twice:\n${summary}`);
  assert.ok(of(events, 'DataVolume', 'flaky').some((e) => e.reason === 'ImportSucceeded'), summary);
});
