/**
 * The node agent's snapshot driver (external-snapshotter's CSI sidecar and
 * the driver's snapshot calls in one): for each VolumeSnapshotContent of
 * the `vireo.io/local` driver whose volume (or handle) is on this node, it
 * cuts the snapshot into `<dataDir>/snapshots/<content name>/` and writes
 * the content's status (`snapshotHandle`, `creationTime` in nanoseconds,
 * `restoreSize` in bytes, `readyToUse`), or `status.error` saying why not.
 * A pre-provisioned content (`spec.source.snapshotHandle`) is checked and
 * marked ready. A content being deleted loses its snapshot directory when
 * its policy is Delete, then its finalizer.
 */
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { stringAt, booleanAt } from '../../api/kinds/read.js';
import type { Client } from '../../client/index.js';
import { Informer, resources } from '../../client/index.js';
import { WorkQueue } from '../../controllers/queue.js';
import type { ReconcileResult } from '../../controllers/queue.js';
import type { Logger } from '../../log/logger.js';
import { localProvisioner, localVolumeOf, volumeEncryptionOf, volumeNode } from '../local/index.js';
import { readSnapshotMeta } from './chain.js';
import type { SnapshotMeta } from './chain.js';
import { formatSnapshotHandle, parseSnapshotHandle, snapshotDir } from './handle.js';
import type { LiveGuests } from './live.js';
import { contentFinalizer } from './names.js';
import { cutSnapshot, removeSnapshot } from './operations.js';
import { volumeSnapshotContents } from './resources.js';

/** What the sidecar needs; see the fields. */
export interface SnapshotSidecarOptions {
  client: Client;
  nodeName: string;
  /** The agent's data directory: snapshots go to `snapshots/<id>/` below it. */
  dataDir: string;
  logger: Logger;
  /** The running guests using a claim; without it every volume is treated as offline. */
  live?: LiveGuests;
}

/** See the module comment. */
export class SnapshotSidecar {
  private readonly logger: Logger;
  private readonly contents: Informer;
  private readonly volumes: Informer;
  private readonly queue: WorkQueue;

  constructor(private readonly options: SnapshotSidecarOptions) {
    this.logger = options.logger.child({ component: 'snapshot-sidecar', node: options.nodeName });
    this.queue = new WorkQueue((key, signal) => this.reconcile(key, signal), { logger: this.logger, concurrency: 2, baseDelayMs: 200, maxDelayMs: 30_000, objectOf: (key) => this.contents.get(key) });
    this.contents = new Informer(options.client, volumeSnapshotContents, this.logger);
    this.volumes = new Informer(options.client, resources.persistentVolumes, this.logger);
    this.contents.onChange((key) => { this.queue.add(key); });
  }

  async start(): Promise<void> {
    await Promise.all([this.contents.start(), this.volumes.start()]);
    this.queue.start();
  }

  async stop(): Promise<void> {
    await this.queue.stop();
    await Promise.all([this.contents.stop(), this.volumes.stop()]);
  }

  private async reconcile(name: string, signal: AbortSignal): Promise<ReconcileResult | undefined> {
    const content = this.contents.get(name);
    if (content === undefined || stringAt(content, 'spec', 'driver') !== localProvisioner) return {};
    const preProvisioned = stringAt(content, 'spec', 'source', 'snapshotHandle');
    const handle = parseSnapshotHandle(stringAt(content, 'status', 'snapshotHandle') ?? preProvisioned);
    const pvName = stringAt(content, 'spec', 'source', 'volumeHandle') ?? '';
    const pv = pvName === '' ? undefined : this.volumes.get(pvName);
    const node = handle?.node ?? (pv === undefined ? undefined : volumeNode(pv));
    if (node !== this.options.nodeName) return {};
    const dir = snapshotDir(this.options.dataDir, handle?.id ?? name);
    if (content.metadata.deletionTimestamp !== undefined) return this.remove(content, dir);
    if (booleanAt(content, 'status', 'readyToUse') === true) return {};
    try {
      if (preProvisioned !== undefined) {
        const meta = await readSnapshotMeta(dir);
        if (meta === undefined) return await this.fail(content, `snapshot handle "${preProvisioned}" names no complete snapshot on node "${node}" (${dir}); check the handle`);
        await this.ready(content, meta, handle?.id ?? name);
        return {};
      }
      const claim = { namespace: stringAt(pv, 'spec', 'claimRef', 'namespace') ?? '', name: stringAt(pv, 'spec', 'claimRef', 'name') ?? '' };
      const pvc = await this.options.client.tryGet(resources.persistentVolumeClaims, claim.namespace, claim.name);
      if (pv === undefined || pvc === undefined || pvc.metadata.uid !== stringAt(pv, 'spec', 'claimRef', 'uid')) {
        return await this.fail(content, `the volume "${pvName}" to snapshot has no claim ${claim.namespace}/${claim.name} any more, so there is nothing to snapshot`);
      }
      // A new top over an encrypted layer would hold the guest's later writes in the clear.
      if (volumeEncryptionOf(pv) !== undefined) return await this.fail(content, `the volume "${pvName}" is encrypted, and snapshots of encrypted volumes are not supported yet`);
      const result = await cutSnapshot(localVolumeOf(pvc, pv), claim, { dir, live: this.options.live, signal });
      if ('wait' in result) {
        this.logger.info('snapshot waits', { content: name, reason: result.wait });
        return { requeueAfter: 1000 };
      }
      await this.ready(content, result, name);
      this.logger.info('snapshot cut', { content: name, volume: pvName, format: result.format, bytes: result.bytes, namespace: claim.namespace, claim: claim.name });
      return {};
    } catch (err) {
      if (signal.aborted) throw err;
      await this.fail(content, `failed to take snapshot of volume "${pvName}": ${err instanceof Error ? err.message : String(err)}`);
      throw err;
    }
  }

  private async ready(content: KObject, meta: SnapshotMeta, id: string): Promise<void> {
    const status = {
      snapshotHandle: formatSnapshotHandle({ node: this.options.nodeName, id }),
      // CSI's creation time is nanoseconds since the epoch.
      creationTime: meta.createdMs * 1_000_000,
      restoreSize: meta.bytes,
      readyToUse: true,
      error: null,
    };
    await this.options.client.patch(volumeSnapshotContents, undefined, content.metadata.name ?? '', 'merge', { status }, { subresource: 'status' });
  }

  /** Writes `status.error` (once per message) and retries later. */
  private async fail(content: KObject, message: string): Promise<ReconcileResult> {
    if (stringAt(content, 'status', 'error', 'message') !== message) {
      const error = { message, time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') };
      await this.options.client.patch(volumeSnapshotContents, undefined, content.metadata.name ?? '', 'merge', { status: { readyToUse: false, error } }, { subresource: 'status' });
    }
    return { requeueAfter: 10_000 };
  }

  private async remove(content: KObject, dir: string): Promise<ReconcileResult> {
    const finalizers = content.metadata.finalizers ?? [];
    if (!finalizers.includes(contentFinalizer)) return {};
    if (stringAt(content, 'spec', 'deletionPolicy') === 'Delete') {
      await removeSnapshot(dir);
      this.logger.info('snapshot deleted', { content: content.metadata.name, dir });
    }
    try {
      await this.options.client.patch(volumeSnapshotContents, undefined, content.metadata.name ?? '', 'merge', {
        metadata: { resourceVersion: content.metadata.resourceVersion, finalizers: finalizers.filter((f) => f !== contentFinalizer) },
      });
    } catch (err) {
      if (err instanceof ApiError && (err.reason === 'NotFound' || err.reason === 'Conflict')) return {};
      throw err;
    }
    return {};
  }
}
