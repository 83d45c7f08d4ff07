/**
 * What the snapshot, restore and clone controller tests share: the real API
 * server (which serves the CSI snapshot API) with the snapshot controllers,
 * a VolumeSnapshotClass for the default StorageClass, and the CSI side
 * played by the test (no CSI snapshot controller or agent runs here): a
 * VolumeSnapshot made ready, a claim bound.
 */
import type { KObject } from '../../src/api/object.js';
import { recordAt, stringAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import type { HttpClient } from '../../src/client/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { SnapshotControllers } from '../../src/controllers/vmsnapshot/index.js';
import type { Env } from './support.js';
import { eventually, startEnv } from './support.js';

export interface SnapshotEnv extends Env {
  controllers: SnapshotControllers;
  storageClass: string;
}

export async function startSnapshotEnv(): Promise<SnapshotEnv> {
  const env = await startEnv();
  const classes = await env.client.list(resources.storageClasses);
  let sc = classes.items.find((c) => c.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true');
  sc ??= await env.client.create(resources.storageClasses, {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: 'local', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: 'vireo.io/local',
    volumeBindingMode: 'WaitForFirstConsumer',
  });
  const driver = stringAt(sc, 'provisioner') ?? '';
  const snapshotClasses = await env.client.list(resources.volumeSnapshotClasses);
  if (!snapshotClasses.items.some((c) => stringAt(c, 'driver') === driver)) {
    await env.client.create(resources.volumeSnapshotClasses, { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshotClass', metadata: { name: 'local' }, driver, deletionPolicy: 'Delete' });
  }
  const controllers = new SnapshotControllers(env.client, silentLogger);
  await controllers.start();
  return {
    ...env,
    controllers,
    storageClass: sc.metadata.name ?? '',
    async close() {
      await controllers.stop();
      await env.close();
    },
  };
}

/** A claim of the default class, bound (the test plays the binder). */
export async function boundClaim(env: SnapshotEnv, name: string, size = '1Gi', extra: Record<string, unknown> = {}): Promise<KObject> {
  await env.client.create(resources.persistentVolumeClaims, {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: 'default', labels: { disk: name } },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } }, storageClassName: env.storageClass, ...extra },
  });
  return bind(env.client, name);
}

export function bind(client: HttpClient, name: string): Promise<KObject> {
  return client.patch(resources.persistentVolumeClaims, 'default', name, 'merge', { status: { phase: 'Bound', capacity: { storage: '1Gi' } } }, { subresource: 'status' });
}

/** Plays the CSI snapshotter: the VolumeSnapshot exists and is cut (`creationTime`), ready when `ready`. */
export async function cut(client: HttpClient, name: string, ready: boolean, restoreSize = '1Gi'): Promise<KObject> {
  await eventually(() => client.tryGet(resources.volumeSnapshots, 'default', name), { what: `VolumeSnapshot ${name}` });
  return client.patch(resources.volumeSnapshots, 'default', name, 'merge', {
    status: { boundVolumeSnapshotContentName: `snapcontent-${name}`, creationTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), readyToUse: ready, restoreSize },
  }, { subresource: 'status' });
}

/** A stopped VM in `default` with a containerDisk, the claim `claim` as volume `data`, and cloud-init. */
export function vmWithClaim(name: string, claim: string, runStrategy = 'Halted', extraSpec: Record<string, unknown> = {}): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default', labels: { app: name, team: 'a' }, annotations: { 'example.com/keep': 'yes', 'example.com/drop': 'yes' } },
    spec: {
      runStrategy,
      template: {
        metadata: { labels: { app: name } },
        spec: {
          domain: {
            devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'data', disk: { bus: 'virtio' } }, { name: 'cloudinit', disk: { bus: 'virtio' } }], interfaces: [{ name: 'default', masquerade: {}, macAddress: '02:00:00:00:00:01' }] },
            memory: { guest: '128Mi' },
            firmware: { serial: `serial-${name}`, uuid: '5d307ca9-b3ef-428c-8861-06e72d69f223' },
          },
          networks: [{ name: 'default', pod: {} }],
          volumes: [
            { name: 'root', containerDisk: { image: 'localhost/vireo/tiny:latest' } },
            { name: 'data', persistentVolumeClaim: { claimName: claim } },
            { name: 'cloudinit', cloudInitNoCloud: { userData: '#!/bin/sh\n' } },
          ],
          ...extraSpec,
        },
      },
    },
  };
}

/** The snapshot `name` once `probe` holds. */
export function snapshotWhere(client: HttpClient, name: string, probe: (s: KObject) => boolean, what: string): Promise<KObject> {
  return eventually(async () => {
    const s = await client.tryGet(resources.virtualMachineSnapshots, 'default', name);
    return s !== undefined && probe(s) ? s : undefined;
  }, { what: `snapshot ${name}: ${what}`, timeoutMs: 15_000 });
}

export function snapshotManifest(name: string, vm: string, spec: Record<string, unknown> = {}): KObject {
  return { apiVersion: 'snapshot.kubevirt.io/v1beta1', kind: 'VirtualMachineSnapshot', metadata: { name, namespace: 'default' }, spec: { source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: vm }, ...spec } };
}

export function restoreManifest(name: string, target: string, snapshot: string, spec: Record<string, unknown> = {}): KObject {
  return { apiVersion: 'snapshot.kubevirt.io/v1beta1', kind: 'VirtualMachineRestore', metadata: { name, namespace: 'default' }, spec: { target: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: target }, virtualMachineSnapshotName: snapshot, ...spec } };
}

/** Takes a snapshot of `vm` and plays the CSI side until it is ready to use. */
export async function readySnapshot(env: SnapshotEnv, name: string, vm: string): Promise<KObject> {
  const created = await env.client.create(resources.virtualMachineSnapshots, snapshotManifest(name, vm));
  await cut(env.client, `vmsnapshot-${created.metadata.uid ?? ''}-volume-data`, true);
  return snapshotWhere(env.client, name, (s) => recordAt(s, 'status')?.readyToUse === true, 'ready to use');
}
