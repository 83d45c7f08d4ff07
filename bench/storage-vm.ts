/**
 * The storage benchmark's API half: snapshots of a running VM's volume
 * through the real server, controllers and node agent (in-process, TCG
 * guest), timed from the create to the `readyToUse` seen on a watch. A
 * CSI VolumeSnapshot of the claim (the snapshot controller and the
 * agent's sidecar: a live freeze through QMP) and a KubeVirt
 * VirtualMachineSnapshot of the VM (which adds the VM lock, its content
 * and the VolumeSnapshot it cuts) take turns on the same volume.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { KObject } from '../src/api/object.js';
import { arrayAt, booleanAt, recordsAt, stringAt } from '../src/api/kinds/read.js';
import { TEST_GUEST_IMAGE, importTestGuest } from '../src/agent/images/index.js';
import { HttpClient, resources } from '../src/client/index.js';
import type { ResourceRef } from '../src/client/index.js';
import { startTestServer } from '../src/testing/server.js';
import { activeFile } from '../src/storage/snapshots/chain.js';
import { qemuPidsUnder, waitUntil } from './vm-proc.js';

const namespace = 'default';

export interface VmSnapshotTimes {
  /** CSI VolumeSnapshot of the running VM's claim, create → readyToUse (ms). */
  volumeSnapshots: number[];
  /** The last VirtualMachineSnapshot's `status.indications` (GuestAgent: the guest was frozen around the cut). */
  indications?: string[];
  /** VirtualMachineSnapshot of the running VM, create → readyToUse (ms). */
  vmSnapshots: number[];
}

export interface VmSnapshotOptions {
  rounds: number;
  volumeBytes: number;
  /** Written from the host before the VM starts, in 16 runs spread over the volume. */
  writtenBytes: number;
}

/** Runs a server with an agent, a VM with a qcow2 claim of `volumeBytes`, and times `rounds` of each snapshot, alternating. */
export async function timeVmSnapshots(options: VmSnapshotOptions): Promise<VmSnapshotTimes> {
  const server = await startTestServer({ controllers: true, agent: true });
  const client = new HttpClient({ server: server.url, token: server.token, caCert: server.pki.caCert, userAgent: 'vireo-bench-storage' });
  try {
    const images = server.plane.workloads.images;
    if (images === undefined) throw new Error('the test server runs no node agent');
    await importTestGuest(images);
    await client.create(resources.storageClasses, { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'qcow2-now' }, provisioner: 'vireo.io/local', volumeBindingMode: 'Immediate', reclaimPolicy: 'Delete', parameters: { format: 'qcow2' } });
    await client.create(resources.persistentVolumeClaims, {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'bench-data', namespace },
      spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'qcow2-now', resources: { requests: { storage: String(options.volumeBytes) } } },
    });
    let uid = '';
    await waitUntil(async () => {
      const pvc = await client.get(resources.persistentVolumeClaims, namespace, 'bench-data');
      uid = pvc.metadata.uid ?? '';
      return stringAt(pvc, 'status', 'phase') === 'Bound';
    }, { what: 'the claim to bind', timeoutMs: 30_000, intervalMs: 50 });
    const chunk = options.writtenBytes / 16;
    const writes = Array.from({ length: 16 }, (_, i) => ['-c', `write -P ${(i % 250) + 1} ${i * (options.volumeBytes / 16)} ${chunk}`]).flat();
    execFileSync('qemu-io', ['-f', 'qcow2', ...writes, join(server.dir, 'node', 'agent', 'volumes', `pvc-${uid}`, activeFile)], { stdio: 'ignore' });

    await client.create(resources.virtualMachines, benchVm());
    await waitUntil(async () => stringAt(await client.tryGet(resources.virtualMachineInstances, namespace, 'bench-vm'), 'status', 'phase') === 'Running', { what: 'the VM to run', timeoutMs: 120_000, intervalMs: 100 });
    // Timed as KubeVirt users take them: with the guest agent answering, so the guest's filesystems are frozen around each cut.
    await waitUntil(async () => recordsAt(await client.tryGet(resources.virtualMachineInstances, namespace, 'bench-vm'), 'status', 'conditions').some((c) => c.type === 'AgentConnected' && c.status === 'True'), { what: 'the guest agent to connect', timeoutMs: 180_000, intervalMs: 200 });

    const times: VmSnapshotTimes = { volumeSnapshots: [], vmSnapshots: [] };
    for (let round = 0; round < options.rounds; round++) {
      times.volumeSnapshots.push(await timedUntilReady(client, resources.volumeSnapshots, {
        apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshot', metadata: { name: `csi-${round}`, namespace }, spec: { source: { persistentVolumeClaimName: 'bench-data' } },
      }));
      times.vmSnapshots.push(await timedUntilReady(client, resources.virtualMachineSnapshots, {
        apiVersion: 'snapshot.kubevirt.io/v1beta1', kind: 'VirtualMachineSnapshot', metadata: { name: `vm-${round}`, namespace }, spec: { source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'bench-vm' } },
      }));
    }
    if (stringAt(await client.get(resources.virtualMachineInstances, namespace, 'bench-vm'), 'status', 'phase') !== 'Running') throw new Error('the VM stopped during the snapshots');
    const last = await client.get(resources.virtualMachineSnapshots, namespace, `vm-${options.rounds - 1}`);
    times.indications = arrayAt(last, 'status', 'indications').filter((i): i is string => typeof i === 'string');
    return times;
  } finally {
    client.close();
    try {
      await server.stop();
    } finally {
      for (const pid of qemuPidsUnder(server.dir)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }
}

/** Creates `obj` and resolves with the milliseconds until a watch shows it `readyToUse`. */
async function timedUntilReady(client: HttpClient, ref: ResourceRef, obj: KObject): Promise<number> {
  const name = obj.metadata.name ?? '';
  const list = await client.list(ref, { namespace, fieldSelector: `metadata.name=${name}` });
  const abort = new AbortController();
  let readyAt: number | undefined;
  const watching = client.watch(ref, { namespace, fieldSelector: `metadata.name=${name}`, resourceVersion: list.metadata.resourceVersion ?? '0' }, (event) => {
    if (booleanAt(event.object, 'status', 'readyToUse') !== true) return;
    readyAt ??= performance.now();
    abort.abort();
  }, abort.signal);
  const start = performance.now();
  try {
    await client.create(ref, obj);
    await waitUntil(() => readyAt !== undefined, { what: `${ref.plural}/${name} to be ready`, timeoutMs: 60_000, intervalMs: 5 });
  } finally {
    abort.abort();
    await watching.catch(() => undefined);
  }
  return (readyAt ?? start) - start;
}

function benchVm(): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'bench-vm', namespace },
    spec: {
      runStrategy: 'Always',
      template: {
        spec: {
          terminationGracePeriodSeconds: 0,
          domain: {
            devices: { autoattachGraphicsDevice: false, disks: [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'data', disk: { bus: 'virtio' } }] },
            memory: { guest: '128Mi' },
            resources: {},
          },
          volumes: [
            { name: 'root', containerDisk: { image: TEST_GUEST_IMAGE } },
            { name: 'data', persistentVolumeClaim: { claimName: 'bench-data' } },
          ],
        },
      },
    },
  };
}
