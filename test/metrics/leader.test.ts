/**
 * Two servers on one etcd: each serves `/metrics`, but only the leader
 * (the holder of the Lease, which runs the singletons) reports
 * virt-controller's object families and its queues' samples, so summing
 * over both servers never doubles a family; each reports its own
 * `kubevirt_virt_controller_leading_status`. When the leader stops, the
 * other takes over and reports them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:https';
import { ensurePki } from '../../src/cli/pki.js';
import type { Pki } from '../../src/cli/pki.js';
import { EtcdProcess } from '../../src/store/etcd-process.js';
import { openStore, parseEtcdUrl } from '../../src/store/index.js';
import type { Store } from '../../src/store/index.js';
import { startControlPlane } from '../../src/server/control-plane.js';
import type { ControlPlane } from '../../src/server/control-plane.js';
import { HttpClient, resources } from '../../src/client/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { eventually } from '../../src/testing/wait.js';
import { hasBinary } from '../../src/testing/binaries.js';

const skip = hasBinary('etcd') ? false : 'etcd is not installed (scripts/setup installs etcd-server)';

let etcd: EtcdProcess;
let pki: Pki;
let dir: string;
const token = randomBytes(16).toString('hex');
const planes: { plane: ControlPlane; store: Store; stopped: boolean }[] = [];

before(async () => {
  if (skip !== false) return;
  dir = mkdtempSync(join(tmpdir(), 'vireo-metrics-leader-'));
  pki = await ensurePki(dir, ['127.0.0.1']);
  etcd = await EtcdProcess.start();
  for (let i = 0; i < 2; i++) {
    const store = await openStore({ backend: 'etcd', ...parseEtcdUrl(etcd.storeUrl) });
    const plane = await startControlPlane({
      store, tls: { cert: pki.serverCert, key: pki.serverKey }, caCert: pki.caCert, token, logger: silentLogger, host: '127.0.0.1', port: 0,
      leaderElection: { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 },
    });
    planes.push({ plane, store, stopped: false });
  }
});
after(async () => {
  for (const entry of planes) {
    if (!entry.stopped) await entry.plane.stop();
    await entry.store.close();
  }
  if (skip === false) await etcd.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** Each family's sample values in one server's scrape. */
function scrape(plane: ControlPlane): Promise<Map<string, number[]>> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: plane.address.port, path: '/metrics', headers: { authorization: `Bearer ${token}` }, agent: new Agent({ ca: pki.caCert }) }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString('utf8'); });
      res.on('end', () => {
        const families = new Map<string, number[]>();
        for (const line of body.split('\n')) {
          const declared = /^# TYPE (\S+) /.exec(line)?.[1];
          if (declared !== undefined) { families.set(declared, []); continue; }
          const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{.*\})? (\S+)$/.exec(line);
          const name = sample?.[1];
          const family = name === undefined ? undefined : [...families.keys()].find((f) => name === f || name.startsWith(`${f}_`));
          if (family !== undefined) families.get(family)?.push(Number(sample?.[2]));
        }
        resolve(families);
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const count = (families: Map<string, number[]>, name: string): number | undefined => families.get(name)?.length;
const leading = async (plane: ControlPlane): Promise<boolean> => (await scrape(plane)).get('kubevirt_virt_controller_leading_status')?.[0] === 1 && plane.elector?.isLeader === true;

test('only the leading server reports the object families and queue samples; the other takes over when it stops', { skip }, async () => {
  const client = new HttpClient({ server: `https://127.0.0.1:${planes[0]?.plane.address.port ?? 0}`, token, caCert: pki.caCert, userAgent: 'metrics-leader-test' });
  try {
    await client.create(resources.virtualMachines, {
      apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'counted', namespace: 'default' },
      spec: { runStrategy: 'Halted', template: { spec: { domain: { devices: {}, memory: { guest: '64Mi' } } } } },
    });
  } finally {
    client.close();
  }
  const first = await eventually(async () => {
    const states = await Promise.all(planes.map(async ({ plane }) => ({ plane, leads: plane.elector?.isLeader === true, families: await scrape(plane) })));
    const leaders = states.filter((s) => s.leads);
    return leaders.length === 1 && (count(leaders[0]?.families ?? new Map<string, number[]>(), 'kubevirt_vm_info') ?? 0) >= 1 ? states : undefined;
  }, { what: 'one leader reporting kubevirt_vm_info', timeoutMs: 20_000 });
  const leader = first.find((s) => s.leads);
  const follower = first.find((s) => !s.leads);
  assert.ok(leader !== undefined && follower !== undefined);
  assert.equal(count(follower.families, 'kubevirt_vm_info'), undefined, 'the follower has no virt-controller object family');
  assert.equal(count(follower.families, 'kubevirt_vmi_migrations_in_pending_phase'), undefined);
  assert.equal(count(follower.families, 'workqueue_adds_total') ?? 0, 0, 'nor queue samples: its controllers do not run');
  assert.ok((count(leader.families, 'workqueue_adds_total') ?? 0) > 0);
  assert.deepEqual(follower.families.get('kubevirt_virt_controller_leading_status'), [0], 'each server reports its own leading status');
  assert.deepEqual(leader.families.get('kubevirt_virt_controller_leading_status'), [1]);
  assert.ok((count(follower.families, 'apiserver_request_total') ?? 0) > 0, 'every server reports its own requests');

  const entry = planes.find((p) => p.plane === leader.plane);
  assert.ok(entry !== undefined);
  await entry.plane.stop();
  entry.stopped = true;
  await eventually(async () => (await leading(follower.plane)) && (count(await scrape(follower.plane), 'kubevirt_vm_info') ?? 0) >= 1, { what: 'the other server leads and reports kubevirt_vm_info', timeoutMs: 20_000 });
});
