/**
 * What the node failure tests share (node-failure.test.ts,
 * node-fencing.test.ts): a lab cluster with a short grace period and the
 * images every host needs, VMs without a pod NIC, placing a VM on one host
 * without a nodeSelector, and who has a disk file open.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { stringAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { ImageStore } from '../../src/agent/images/index.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { eventually } from '../../src/testing/wait.js';
import { importBlankImage } from '../agent/support.js';
import { startLabCluster } from './support.js';
import type { LabCluster } from './support.js';
import { labSkip } from './requirements.js';

export const skip = labSkip;

export const graceSeconds = 12;

/** A VM of `image` with no pod NIC (the guests need no network here). */
export function vm(name: string, image: string, options: { disks?: unknown[]; volumes?: unknown[]; memory?: string } = {}): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default' },
    spec: {
      runStrategy: 'Always',
      template: {
        spec: {
          terminationGracePeriodSeconds: 0,
          domain: {
            devices: { autoattachGraphicsDevice: false, autoattachPodInterface: false, disks: [{ name: 'root', disk: { bus: 'virtio' } }, ...(options.disks ?? [])] },
            memory: { guest: options.memory ?? '64Mi' },
            resources: {},
          },
          volumes: [{ name: 'root', containerDisk: { image } }, ...(options.volumes ?? [])],
        },
      },
    },
  };
}

export async function vmiOf(cluster: LabCluster, name: string): Promise<KObject | undefined> {
  return cluster.client.tryGet(resources.virtualMachineInstances, 'default', name);
}

export function nodeOf(vmi: KObject | undefined): string | undefined {
  return vmi === undefined ? undefined : stringAt(vmi, 'status', 'nodeName');
}

export function phaseOf(vmi: KObject | undefined): string | undefined {
  return vmi === undefined ? undefined : stringAt(vmi, 'status', 'phase');
}

/** `kubectl get nodes` status column of `node`. */
export async function nodeStatus(cluster: LabCluster, node: string): Promise<string | undefined> {
  const out = await kubectl(['get', 'nodes', '--no-headers'], cluster.kc);
  const line = out.stdout.split('\n').find((l) => l.startsWith(`${node} `));
  return line?.trim().split(/\s+/)[1];
}

/** Runs VM `name` on `host`: the other nodes are cordoned until it runs there (a nodeSelector would keep it from moving). */
export async function placeOn(cluster: LabCluster, name: string, host: string, manifest: KObject): Promise<KObject> {
  const others = [cluster.serverNode, ...cluster.lab.hosts.slice(1).map((h) => h.name)].filter((n) => n !== host);
  for (const node of others) assert.equal((await kubectl(['cordon', node], cluster.kc)).code, 0);
  try {
    await cluster.client.create(resources.virtualMachines, manifest);
    return await eventually(async () => {
      const vmi = await vmiOf(cluster, name);
      if (phaseOf(vmi) === 'Failed') throw new Error(`VMI ${name} failed: ${JSON.stringify(vmi?.status)}`);
      return phaseOf(vmi) === 'Running' && nodeOf(vmi) === host ? vmi : undefined;
    }, { what: `VM ${name} running on ${host}`, timeoutMs: 240_000, intervalMs: 250 });
  } finally {
    for (const node of others) await kubectl(['uncordon', node], cluster.kc);
  }
}

/** QEMU pids (any host) that have `file` open, from /proc/PID/fd. */
export function qemusWithOpen(file: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('qemu-system')) continue;
      for (const fd of readdirSync(`/proc/${entry}/fd`)) {
        if (readlinkSync(`/proc/${entry}/fd/${fd}`) === file) {
          pids.push(Number(entry));
          break;
        }
      }
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** A lab cluster of three hosts with the short grace period, the blank image in every host's store, and KubeVirt's emulation on. */
export async function startFailureCluster(): Promise<{ cluster: LabCluster; stores: ImageStore[] }> {
  const cluster = await startLabCluster({ hosts: 3, serverArgs: ['--node-monitor-grace-period', `${graceSeconds}s`] });
  try {
    const stores = [join(cluster.root, 'server', 'images'), ...cluster.lab.hosts.slice(1).map((h) => join(cluster.root, h.name, 'images'))].map((dir) => new ImageStore(dir));
    for (const store of stores) await importBlankImage(store);
    await cluster.client.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kubevirt' } }).catch(() => undefined);
    await cluster.client.create(resources.kubeVirts, { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: { configuration: { developerConfiguration: { useEmulation: true } } } });
    return { cluster, stores };
  } catch (err) {
    await cluster.close();
    throw err;
  }
}
