/**
 * The node-local provisioner, run by each node agent (TopoLVM's node
 * plugin and external-provisioner in one, with files for logical volumes).
 * For claims of a `vireo.io/local` class sent to this node (the
 * `volume.kubernetes.io/selected-node` annotation, set by the scheduler or
 * the Immediate binder) it makes the volume file, creates the
 * PersistentVolume pinned to the node and binds the two; it grows the file
 * when the claim asks for more (through QMP for a running guest), deletes
 * Released volumes whose policy is Delete, and reports the node's
 * local-storage capacity and free bytes on its Node. A claim with a
 * `dataSource` (a VolumeSnapshot, or a claim to clone) is filled from it
 * instead (`src/storage/snapshots/populate.ts`). Claims it cannot
 * serve (bad class parameters, no room) stay Pending with a
 * `ProvisioningFailed` Event saying why.
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ApiError } from '../../api/errors.js';
import type { KObject } from '../../api/object.js';
import { arrayAt, booleanAt, stringAt } from '../../api/kinds/read.js';
import type { Client } from '../../client/index.js';
import { Informer, resources } from '../../client/index.js';
import { EventRecorder } from '../../controllers/events/index.js';
import { WorkQueue } from '../../controllers/queue.js';
import type { ReconcileResult } from '../../controllers/queue.js';
import type { Logger } from '../../log/logger.js';
import { committedBytes, formatBytes } from './capacity.js';
import type { StorageView } from './capacity.js';
import { createVolumeFile, filesystemCapacity, removeVolumeDir, resizeVolumeFile } from './files.js';
import { capacityAnnotation, hostnameLabel, localProvisioner, localStorageResource, provisionedByAnnotation, selectedNodeAnnotation, volumeFormatAnnotation } from './names.js';
import { parseClassParameters } from './parameters.js';
import type { EncryptionSecretRef, LocalClassParameters } from './parameters.js';
import { compressionAnnotation, encryptionAnnotations, encryptionSecretKey } from './encryption.js';
import { classParameters, isLocalClass, reclaimPolicyOf } from './storage-class.js';
import { claimDataSource } from '../snapshots/data-source.js';
import { cloneRequestAnnotation, cloneTypeAnnotation } from '../snapshots/names.js';
import { cdiAnnotations, importPhases } from '../import/annotations.js';
import type { LiveGuests } from '../snapshots/live.js';
import { populateVolume } from '../snapshots/populate.js';
import { isLocalVolume, localVolumeOf, requestedBytes, volumeBytes, volumeDir, volumeFile, volumeModeOf, volumeNameFor, volumeNode, volumesRoot } from './volume.js';

/** A claim, by namespace and name. */
export interface ClaimRef {
  namespace: string;
  name: string;
}

/**
 * Grows the disks of the running guests of this node that use `claim` to
 * `bytes`; resolves with how many it grew (0: none runs, grow the file).
 */
export type LiveResizer = (claim: ClaimRef, bytes: number, signal: AbortSignal) => Promise<number>;

/** What the provisioner needs; see the fields. */
export interface LocalProvisionerOptions {
  client: Client;
  nodeName: string;
  /** The agent's data directory: volumes go to `volumes/pvc-<uid>/` below it. */
  dataDir: string;
  logger: Logger;
  /** Online expansion of disks in use; without it a claim in use is grown only once no guest runs it. */
  resizeLive?: LiveResizer;
  /** The running guests using a claim, for clones of volumes in use; without it every volume is treated as offline. */
  live?: LiveGuests;
  /** Bytes offered for volumes. Default: the size of the volumes' filesystem, less 10 %. */
  capacityBytes?: number;
  /** How often the capacity is written again even when unchanged (a recreated Node). Default 60 s. */
  refreshMs?: number;
}

const claimPrefix = 'claim:';
const volumePrefix = 'volume:';
const capacityKey = 'capacity';

/** See the module comment. */
export class LocalProvisioner {
  private readonly logger: Logger;
  private readonly claims: Informer;
  private readonly volumes: Informer;
  private readonly classes: Informer;
  private readonly queue: WorkQueue;
  private readonly recorder: EventRecorder;
  private readonly abort = new AbortController();
  private capacity = 0;
  private reported: string | undefined;
  private refresh: NodeJS.Timeout | undefined;

  constructor(private readonly options: LocalProvisionerOptions) {
    const { client } = options;
    this.logger = options.logger.child({ component: 'local-provisioner', node: options.nodeName });
    this.recorder = new EventRecorder(client, localProvisioner, this.logger, { instance: options.nodeName });
    // One at a time: each volume must see the room the previous one took.
    this.queue = new WorkQueue((key, signal) => this.reconcile(key, signal), { logger: this.logger, concurrency: 1, baseDelayMs: 200, maxDelayMs: 60_000, objectOf: (key) => (key.startsWith(claimPrefix) ? this.claims.get(key.slice(claimPrefix.length)) : key.startsWith(volumePrefix) ? this.volumes.get(key.slice(volumePrefix.length)) : undefined) });
    this.claims = new Informer(client, resources.persistentVolumeClaims, this.logger);
    this.volumes = new Informer(client, resources.persistentVolumes, this.logger);
    this.classes = new Informer(client, resources.storageClasses, this.logger);
    this.claims.onChange((key) => { this.queue.add(claimPrefix + key); this.queue.add(capacityKey); });
    this.volumes.onChange((key) => {
      this.queue.add(volumePrefix + key);
      const claim = this.volumes.get(key);
      const ns = stringAt(claim, 'spec', 'claimRef', 'namespace');
      const name = stringAt(claim, 'spec', 'claimRef', 'name');
      if (ns !== undefined && name !== undefined) this.queue.add(`${claimPrefix}${ns}/${name}`);
      this.queue.add(capacityKey);
    });
    this.classes.onChange(() => { for (const pvc of this.claims.list()) this.queue.add(`${claimPrefix}${pvc.metadata.namespace ?? ''}/${pvc.metadata.name ?? ''}`); });
  }

  /** Measures the node's capacity, fills the caches, reports the capacity and starts serving claims. */
  async start(): Promise<void> {
    const root = volumesRoot(this.options.dataDir);
    await mkdir(root, { recursive: true, mode: 0o700 });
    this.capacity = this.options.capacityBytes ?? (await filesystemCapacity(root));
    await Promise.all([this.claims.start(), this.volumes.start(), this.classes.start()]);
    this.queue.add(capacityKey);
    this.queue.start();
    this.refresh = setInterval(() => {
      this.reported = undefined;
      this.queue.add(capacityKey);
    }, this.options.refreshMs ?? 60_000);
    this.refresh.unref();
    this.logger.info('local provisioner started', { capacityBytes: this.capacity, root });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    if (this.refresh !== undefined) clearInterval(this.refresh);
    await this.queue.stop();
    await Promise.all([this.claims.stop(), this.volumes.stop(), this.classes.stop()]);
    await this.recorder.flush();
  }

  private view(): StorageView {
    return { pvs: this.volumes.list(), pvcs: this.claims.list(), isLocalClass: (name) => isLocalClass(this.classes.get(name)) };
  }

  private async reconcile(key: string, signal: AbortSignal): Promise<ReconcileResult | undefined> {
    if (key === capacityKey) return this.reportCapacity();
    if (key.startsWith(claimPrefix)) return this.reconcileClaim(key.slice(claimPrefix.length), signal);
    if (key.startsWith(volumePrefix)) return this.reconcileVolume(key.slice(volumePrefix.length));
    return {};
  }

  private async reconcileClaim(key: string, signal: AbortSignal): Promise<ReconcileResult | undefined> {
    const pvc = this.claims.get(key);
    if (pvc === undefined || pvc.metadata.deletionTimestamp !== undefined) return {};
    if (pvc.metadata.annotations?.[selectedNodeAnnotation] !== this.options.nodeName) return {};
    const className = stringAt(pvc, 'spec', 'storageClassName') ?? '';
    const sc = this.classes.get(className);
    if (!isLocalClass(sc)) return {};
    const parsed = parseClassParameters(className, classParameters(sc));
    const volumeName = stringAt(pvc, 'spec', 'volumeName') ?? '';
    if (volumeName === '') {
      if ('error' in parsed) {
        this.recorder.record(pvc, 'Warning', 'ProvisioningFailed', `failed to provision volume with StorageClass "${className}": ${parsed.error}`);
        return {};
      }
      return this.provision(pvc, { className, parameters: parsed.parameters, reclaim: reclaimPolicyOf(sc) }, signal);
    }
    if (volumeName !== volumeNameFor(pvc.metadata.uid ?? '')) return {};
    const pv = this.volumes.get(volumeName) ?? (await this.options.client.tryGet(resources.persistentVolumes, undefined, volumeName));
    if (pv === undefined || volumeNode(pv) !== this.options.nodeName) return {};
    await this.markBound(pvc, pv);
    const wanted = requestedBytes(pvc) ?? 0;
    if (wanted > volumeBytes(pv)) {
      const parameters = 'error' in parsed ? { format: 'raw' as const, preallocation: 'off' as const } : parsed.parameters;
      return this.expand(pvc, pv, { wanted, allowed: booleanAt(sc, 'allowVolumeExpansion') === true, parameters }, signal);
    }
    return {};
  }

  /** Makes the file and the PersistentVolume of `pvc` (unless an earlier pass did), then binds them. */
  private async provision(pvc: KObject, cls: { className: string; parameters: LocalClassParameters; reclaim: 'Delete' | 'Retain' }, signal: AbortSignal): Promise<ReconcileResult> {
    const { client, nodeName, dataDir } = this.options;
    const uid = pvc.metadata.uid ?? '';
    const name = volumeNameFor(uid);
    const claim = `${pvc.metadata.namespace ?? ''}/${pvc.metadata.name ?? ''}`;
    const log = this.logger.child({ namespace: pvc.metadata.namespace, name: pvc.metadata.name, uid });
    let pv = this.volumes.get(name) ?? (await client.tryGet(resources.persistentVolumes, undefined, name));
    if (pv === undefined) {
      const bytes = requestedBytes(pvc);
      if (bytes === undefined || bytes <= 0) {
        this.recorder.record(pvc, 'Warning', 'ProvisioningFailed', `claim ${claim} asks for no storage: set spec.resources.requests.storage, e.g. "1Gi"`);
        return {};
      }
      const free = this.capacity - committedBytes(nodeName, this.view(), uid);
      if (bytes > free) {
        this.recorder.record(pvc, 'Warning', 'ProvisioningFailed', `not enough local storage on node "${nodeName}": the claim asks for ${formatBytes(bytes)}, the node has ${formatBytes(Math.max(0, free))} free of ${formatBytes(this.capacity)}; free some volumes or ask for less`);
        return { requeueAfter: 30_000 };
      }
      const mode = volumeModeOf(pvc);
      // A Block volume stands in for a device: always raw, as KubeVirt hands block PVCs to the guest.
      let format = mode === 'Block' ? 'raw' : cls.parameters.format;
      const dir = volumeDir(dataDir, uid);
      const source = claimDataSource(pvc);
      if (source !== undefined && 'unsupported' in source) {
        this.recorder.record(pvc, 'Warning', 'ProvisioningFailed', `failed to provision volume with StorageClass "${cls.className}": ${source.unsupported}`);
        return {};
      }
      this.recorder.record(pvc, 'Normal', 'Provisioning', `External provisioner is provisioning volume for claim "${claim}"`);
      const encryption = cls.parameters.encryption;
      // The importer writes plain images, which an encrypted volume must never hold.
      const imported = pvc.metadata.annotations?.['cdi.kubevirt.io/storage.import.source'] !== undefined || pvc.metadata.annotations?.['cdi.kubevirt.io/storage.upload.target'] !== undefined;
      if (encryption !== undefined && (mode === 'Block' || source !== undefined || imported)) {
        const what = mode === 'Block' ? 'volumeMode Block' : source !== undefined ? 'a dataSource' : 'a DataVolume import or upload';
        this.recorder.record(pvc, 'Warning', 'ProvisioningFailed', `failed to provision volume with StorageClass "${cls.className}": encrypted volumes are Filesystem volumes made empty; ${what} is not supported with encryption "luks" yet`);
        return {};
      }
      if (source === undefined) {
        const key = encryption === undefined ? undefined : await this.encryptionKey(pvc, cls.className, encryption.secret);
        if (key === null) return { requeueAfter: 5000 };
        await createVolumeFile({ path: volumeFile(dir, mode), format, preallocation: cls.parameters.preallocation, bytes, signal, ...(key === undefined ? {} : { encryptionKey: key }) });
      } else {
        // A clone or restore keeps its source's format: a qcow2 chain stays one, whatever the class says.
        const made = await populateVolume(pvc, source, { dir, mode, bytes, signal }, { client, nodeName, dataDir, live: this.options.live });
        if ('wait' in made) {
          this.recorder.record(pvc, 'Warning', 'ProvisioningFailed', `failed to provision volume with StorageClass "${cls.className}": ${made.wait}`);
          return { requeueAfter: 3000 };
        }
        if ('remote' in made) {
          // Another node holds the source: an empty volume here, which this node's import runner fills from that node's agent.
          await this.markCopy(pvc, made.remote);
          await createVolumeFile({ path: volumeFile(dir, mode), format, preallocation: 'off', bytes, signal });
        } else {
          format = made.format;
        }
      }
      try {
        const manifest = volumeManifest(pvc, { name, node: nodeName, path: mode === 'Block' ? volumeFile(dir, mode) : dir, format, className: cls.className, reclaim: cls.reclaim });
        if (encryption !== undefined) manifest.metadata.annotations = { ...manifest.metadata.annotations, ...encryptionAnnotations(encryption) };
        if (cls.parameters.compression === true && format === 'qcow2') manifest.metadata.annotations = { ...manifest.metadata.annotations, [compressionAnnotation]: 'true' };
        pv = await client.create(resources.persistentVolumes, manifest);
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
        pv = await client.get(resources.persistentVolumes, undefined, name);
      }
      log.info('volume provisioned', { volume: name, format, bytes, mode });
      this.recorder.record(pvc, 'Normal', 'ProvisioningSucceeded', `Successfully provisioned volume ${name}`);
    }
    if (stringAt(pv, 'spec', 'claimRef', 'uid') !== uid) return {};
    // Bound as the PV controller binds: the claim names the volume, then both say Bound.
    const bound = await client.patch(resources.persistentVolumeClaims, pvc.metadata.namespace, pvc.metadata.name ?? '', 'merge', {
      metadata: { annotations: { 'pv.kubernetes.io/bind-completed': 'yes', 'pv.kubernetes.io/bound-by-controller': 'yes' } },
      spec: { volumeName: name },
    });
    await this.markBound(bound, pv);
    return {};
  }

  /**
   * Marks `pvc` as a copy from a claim (or VolumeSnapshot) on another node, before it is bound
   * (so no guest opens the volume before the copy is in): CDI's
   * host-assisted clone annotations, and the import phase Pending.
   */
  private async markCopy(pvc: KObject, source: { kind: 'PersistentVolumeClaim' | 'VolumeSnapshot'; namespace: string; name: string; node: string }): Promise<void> {
    const annotations: Record<string, string> = { [cloneTypeAnnotation]: 'copy' };
    if (source.kind === 'PersistentVolumeClaim') annotations[cloneRequestAnnotation] = `${source.namespace}/${source.name}`;
    if (pvc.metadata.annotations?.[cdiAnnotations.podPhase] === undefined) annotations[cdiAnnotations.podPhase] = importPhases.pending;
    await this.options.client.patch(resources.persistentVolumeClaims, pvc.metadata.namespace, pvc.metadata.name ?? '', 'merge', { metadata: { uid: pvc.metadata.uid, annotations } });
    const what = source.kind === 'VolumeSnapshot' ? 'VolumeSnapshot' : 'claim';
    this.recorder.record(pvc, 'Normal', 'CloneScheduled', `the source ${what} ${source.namespace}/${source.name} is on node "${source.node}": its data is copied to this node "${this.options.nodeName}"`);
  }

  /** Writes Bound (with the volume's size and modes) on both sides where it is not there yet. */
  private async markBound(pvc: KObject, pv: KObject): Promise<void> {
    const { client } = this.options;
    const size = stringAt(pv, 'spec', 'capacity', 'storage') ?? '0';
    const modes = arrayAt(pv, 'spec', 'accessModes');
    if (stringAt(pvc, 'status', 'phase') !== 'Bound' || stringAt(pvc, 'status', 'capacity', 'storage') === undefined) {
      await client.patch(resources.persistentVolumeClaims, pvc.metadata.namespace, pvc.metadata.name ?? '', 'merge', { status: { phase: 'Bound', capacity: { storage: size }, accessModes: modes } }, { subresource: 'status' });
    }
    if (stringAt(pv, 'status', 'phase') !== 'Bound') {
      await client.patch(resources.persistentVolumes, undefined, pv.metadata.name ?? '', 'merge', { status: { phase: 'Bound' } }, { subresource: 'status' });
    }
  }

  /** Grows the volume to what the claim asks: the running guest's disk through QMP, else the file. */
  private async expand(pvc: KObject, pv: KObject, want: { wanted: number; allowed: boolean; parameters: LocalClassParameters }, signal: AbortSignal): Promise<ReconcileResult> {
    const { client, nodeName } = this.options;
    const size = stringAt(pvc, 'spec', 'resources', 'requests', 'storage') ?? String(want.wanted);
    // Admission refuses growing a claim of a class without allowVolumeExpansion; a class changed since is left alone.
    if (!want.allowed) return {};
    const grow = want.wanted - volumeBytes(pv);
    const free = this.capacity - committedBytes(nodeName, this.view());
    if (grow > free) {
      this.recorder.record(pvc, 'Warning', 'VolumeResizeFailed', `not enough local storage on node "${nodeName}" to grow the volume by ${formatBytes(grow)}: ${formatBytes(Math.max(0, free))} free of ${formatBytes(this.capacity)}`);
      return { requeueAfter: 30_000 };
    }
    const volume = localVolumeOf(pvc, pv);
    this.recorder.record(pvc, 'Normal', 'Resizing', `External resizer is resizing volume ${pv.metadata.name ?? ''}`);
    const claim = { namespace: pvc.metadata.namespace ?? '', name: pvc.metadata.name ?? '' };
    const live = (await this.options.resizeLive?.(claim, want.wanted, signal)) ?? 0;
    if (live === 0) await resizeVolumeFile({ path: volume.path, format: volume.format, preallocation: want.parameters.preallocation, bytes: want.wanted, signal });
    await client.patch(resources.persistentVolumes, undefined, pv.metadata.name ?? '', 'merge', { spec: { capacity: { storage: size } } });
    await client.patch(resources.persistentVolumeClaims, claim.namespace, claim.name, 'merge', { status: { capacity: { storage: size } } }, { subresource: 'status' });
    this.logger.info('volume expanded', { namespace: claim.namespace, name: claim.name, volume: pv.metadata.name, bytes: want.wanted, live });
    this.recorder.record(pvc, 'Normal', 'VolumeResizeSuccessful', `resize volume "${pv.metadata.name ?? ''}" to ${size} succeeded${live > 0 ? ' (online: the running guest sees the new size)' : ''}`);
    return {};
  }

  /** A Released volume of this node whose policy is Delete: its directory, then the object, go. */
  private async reconcileVolume(name: string): Promise<ReconcileResult> {
    const pv = this.volumes.get(name);
    if (pv === undefined || !isLocalVolume(pv) || volumeNode(pv) !== this.options.nodeName) return {};
    if (stringAt(pv, 'status', 'phase') !== 'Released' || stringAt(pv, 'spec', 'persistentVolumeReclaimPolicy') !== 'Delete') return {};
    const path = stringAt(pv, 'spec', 'local', 'path') ?? '';
    const dir = volumeModeOf(pv) === 'Block' ? dirname(path) : path;
    await removeVolumeDir(volumesRoot(this.options.dataDir), dir, name);
    try {
      await this.options.client.delete(resources.persistentVolumes, undefined, name, { preconditions: { uid: pv.metadata.uid ?? '' } });
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
    }
    this.logger.info('released volume deleted', { volume: name, dir });
    return {};
  }

  /** The capacity as the Node's allocatable `vireo.io/local-storage`, the free bytes as its annotation; written when they change. */
  private async reportCapacity(): Promise<ReconcileResult> {
    const { client, nodeName } = this.options;
    const free = Math.max(0, this.capacity - committedBytes(nodeName, this.view()));
    const report = `${this.capacity}/${free}`;
    if (report === this.reported) return {};
    try {
      await client.patch(resources.nodes, undefined, nodeName, 'merge', { metadata: { annotations: { [capacityAnnotation]: String(free) } } });
      const resource = { [localStorageResource]: String(this.capacity) };
      await client.patch(resources.nodes, undefined, nodeName, 'merge', { status: { capacity: resource, allocatable: resource } }, { subresource: 'status' });
    } catch (err) {
      // The Node is written by its registrar; until it exists there is nothing to report on.
      if (err instanceof ApiError && err.reason === 'NotFound') return { requeueAfter: 1000 };
      throw err;
    }
    this.reported = report;
    return {};
  }

  /** The passphrase of an encrypted class, or null (after a ProvisioningFailed event) while its Secret is missing. */
  private async encryptionKey(pvc: KObject, className: string, ref: EncryptionSecretRef): Promise<Buffer | null> {
    const secret = await this.options.client.tryGet(resources.secrets, ref.namespace, ref.name);
    const encoded = stringAt(secret, 'data', encryptionSecretKey);
    const key = encoded === undefined ? undefined : Buffer.from(encoded, 'base64');
    if (key !== undefined && key.length > 0) return key;
    const why = secret === undefined ? 'does not exist' : `has no "${encryptionSecretKey}" entry`;
    this.recorder.record(pvc, 'Warning', 'ProvisioningFailed', `failed to provision volume with StorageClass "${className}": the encryption key Secret ${ref.namespace}/${ref.name} ${why}; create it with the passphrase in "${encryptionSecretKey}"`);
    return null;
  }
}

/** The PersistentVolume of a claim: pinned to the node, bound to the claim, with the file's format. */
function volumeManifest(pvc: KObject, v: { name: string; node: string; path: string; format: string; className: string; reclaim: string }): KObject {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: v.name, annotations: { [provisionedByAnnotation]: localProvisioner, [volumeFormatAnnotation]: v.format } },
    spec: {
      capacity: { storage: stringAt(pvc, 'spec', 'resources', 'requests', 'storage') ?? '0' },
      accessModes: arrayAt(pvc, 'spec', 'accessModes'),
      volumeMode: volumeModeOf(pvc),
      storageClassName: v.className,
      persistentVolumeReclaimPolicy: v.reclaim,
      claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: pvc.metadata.namespace, name: pvc.metadata.name, uid: pvc.metadata.uid, resourceVersion: pvc.metadata.resourceVersion },
      local: { path: v.path },
      nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: hostnameLabel, operator: 'In', values: [v.node] }] }] } },
    },
  };
}

