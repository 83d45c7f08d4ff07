/**
 * Leader failover of two `vireo server`s on a three-member etcd (real
 * processes on loopback). Each round SIGKILLs the server holding the leader
 * Lease and measures, from the kill:
 *
 * - the Lease taken over (the survivor's `acquireTime`);
 * - the first reconcile of the new leader: a VirtualMachine created right
 *   after the kill getting its VMI (the figure the target is about);
 * - the first acknowledged write of a client given both servers' URLs, the
 *   dead one first; beside it, the same client's write latency before the
 *   kill, as the baseline.
 *
 * The killed server comes back as a standby before the next round. Prints
 * median and max against the 15 s target as a ratio.
 *
 * Run: npm run bench:failover
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpClient, resources } from '../src/client/index.js';
import { defaultLeaderLease, leaderRecordOf } from '../src/server/leader-election.js';
import { EtcdCluster } from '../src/store/etcd-process.js';
import { freePort, startServerProcess } from '../src/testing/process.js';
import type { ServerProcess } from '../src/testing/process.js';

const rounds = 3;
const targetMs = 15_000;
const dir = mkdtempSync(join(tmpdir(), 'vireo-bench-failover-'));

interface Slot {
  name: string;
  port: number;
  pkiDir?: string;
  process: ServerProcess;
  identity: string;
}

interface Round {
  leaseMs: number;
  reconcileMs: number;
  clientWriteMs: number;
  baselineWriteMs: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function start(etcd: EtcdCluster, name: string, port: number, pkiDir?: string): Promise<Slot> {
  const process = await startServerProcess({ dataDir: join(dir, name), port, store: etcd.storeUrl, nodeName: `bench-${name}`, timeoutMs: 90_000, ...(pkiDir === undefined ? {} : { pkiDir }) });
  const identity = await until(() => Promise.resolve(/leader election: candidate (\S+) for Lease/.exec(process.output())?.[1]), `${name} to print its identity`, 10_000);
  return { name, port, ...(pkiDir === undefined ? {} : { pkiDir }), process, identity };
}

async function holder(client: HttpClient): Promise<{ holder: string; acquireTime: string }> {
  const record = leaderRecordOf(await client.get(resources.leases, defaultLeaderLease.namespace, defaultLeaderLease.name));
  return { holder: record.holderIdentity, acquireTime: record.acquireTime };
}

function configMap(name: string): { apiVersion: string; kind: string; metadata: { name: string; namespace: string } } {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' } };
}

async function main(): Promise<void> {
  const etcd = await EtcdCluster.start();
  const slots: Slot[] = [];
  const clients: HttpClient[] = [];
  try {
    slots.push(await start(etcd, 'a', await freePort()));
    slots.push(await start(etcd, 'b', await freePort(), join(dir, 'a')));
    const { token, caCert } = slots[0]?.process ?? { token: '', caCert: '' };
    const results: Round[] = [];
    for (let round = 0; round < rounds; round++) {
      const probe = new HttpClient({ server: slots.map((s) => s.process.url), token, caCert });
      clients.push(probe);
      const lease = await until(async () => {
        const h = await holder(probe);
        return slots.some((s) => s.identity === h.holder) ? h : undefined;
      }, 'a leader');
      const leader = slots.find((s) => s.identity === lease.holder);
      const survivor = slots.find((s) => s.identity !== lease.holder);
      if (leader === undefined || survivor === undefined) throw new Error('no leader among the servers');
      const viaSurvivor = new HttpClient({ server: survivor.process.url, token, caCert });
      // The client of both servers, the leader first: it must get past the dead one.
      const both = new HttpClient({ server: [leader.process.url, survivor.process.url], token, caCert });
      clients.push(viaSurvivor, both);
      const baselineStart = performance.now();
      for (let i = 0; i < 10; i++) await both.create(resources.configMaps, configMap(`baseline-${round}-${i}`));
      const baselineWriteMs = (performance.now() - baselineStart) / 10;

      leader.process.child.kill('SIGKILL');
      const killedAt = Date.now();
      await leader.process.exited;
      const vmName = `failover-${round}`;
      const [clientWriteMs] = await Promise.all([
        (async () => {
          for (let i = 0; ; i++) {
            try {
              await both.create(resources.configMaps, configMap(`after-kill-${round}-${i}`));
              return Date.now() - killedAt;
            } catch {
              // not yet acknowledged
            }
          }
        })(),
        viaSurvivor.create(resources.virtualMachines, {
          apiVersion: 'kubevirt.io/v1',
          kind: 'VirtualMachine',
          metadata: { name: vmName, namespace: 'default' },
          spec: { runStrategy: 'Always', template: { spec: { nodeSelector: { 'vireo.bench/nowhere': 'true' }, domain: { devices: {}, memory: { guest: '64Mi' } } } } },
        }),
      ]);
      const reconcileMs = await until(async () => ((await viaSurvivor.tryGet(resources.virtualMachineInstances, 'default', vmName)) === undefined ? undefined : Date.now() - killedAt), 'the new leader to make the VMI');
      const taken = await until(async () => {
        const h = await holder(viaSurvivor);
        return h.holder === survivor.identity ? h : undefined;
      }, 'the survivor to hold the Lease');
      const leaseMs = Date.parse(taken.acquireTime) - killedAt;
      results.push({ leaseMs, reconcileMs, clientWriteMs, baselineWriteMs });
      process.stdout.write(`round ${round + 1}: lease taken over ${leaseMs} ms, first reconcile ${reconcileMs} ms, client of both servers wrote after ${clientWriteMs} ms (baseline write ${baselineWriteMs.toFixed(1)} ms)\n`);
      await viaSurvivor.delete(resources.virtualMachines, 'default', vmName);
      // The killed server comes back as a standby for the next round.
      const index = slots.indexOf(leader);
      slots[index] = await start(etcd, leader.name, leader.port, leader.pkiDir);
    }
    const column = (pick: (r: Round) => number): { median: number; max: number } => ({ median: median(results.map(pick)), max: Math.max(...results.map(pick)) });
    const lease = column((r) => r.leaseMs);
    const reconcile = column((r) => r.reconcileMs);
    const write = column((r) => r.clientWriteMs);
    const baseline = column((r) => r.baselineWriteMs);
    process.stdout.write(`\nleader failover over ${rounds} rounds (target ${targetMs / 1000} s):\n`);
    process.stdout.write(`  Lease taken over      median ${lease.median} ms  max ${lease.max} ms  max/target ${(lease.max / targetMs).toFixed(2)}\n`);
    process.stdout.write(`  first reconcile       median ${reconcile.median} ms  max ${reconcile.max} ms  max/target ${(reconcile.max / targetMs).toFixed(2)}\n`);
    process.stdout.write(`client with two URLs, first acknowledged write after its server died:\n`);
    process.stdout.write(`  failover write        median ${write.median} ms  max ${write.max} ms  vs baseline write ${baseline.median.toFixed(1)} ms (ratio ${(write.median / baseline.median).toFixed(1)})\n`);
  } finally {
    for (const client of clients) client.close();
    for (const slot of slots) {
      if (slot.process.child.exitCode === null && slot.process.child.signalCode === null) slot.process.child.kill('SIGTERM');
      await slot.process.exited;
    }
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
