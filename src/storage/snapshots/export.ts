/**
 * The source side of a volume copy to another node (CDI's host-assisted
 * clone, without its source pod): on the node holding a claim's volume (or
 * a VolumeSnapshot's data) it makes, once per copy, a self-contained qcow2
 * image of the volume at one instant (`exportVolume`: the same frozen
 * layer a same-node clone takes, flattened; a snapshot's chain as it is;
 * only allocated clusters), kept in `<data>/exports/` so the
 * copying node can fetch it in byte ranges and resume after a break; the
 * copying node releases it once its copy is complete; exports of copies
 * given up (the target claim deleted) are swept. The agent endpoint
 * serves it (`src/agent/endpoint-export.ts`).
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiError } from '../../api/errors.js';
import { booleanAt, stringAt } from '../../api/kinds/read.js';
import type { Client } from '../../client/index.js';
import { resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { localProvisioner, localVolumeOf, volumeEncryptionOf } from '../local/index.js';
import { readSnapshotMeta } from './chain.js';
import { parseSnapshotHandle, snapshotDir } from './handle.js';
import { volumeSnapshotContents, volumeSnapshots } from './resources.js';
import type { LiveGuests } from './live.js';
import { exportSnapshot, exportVolume } from './operations.js';
import type { ClaimKey } from './operations.js';

/** A finished export, ready to be read. */
export interface ExportedVolume {
  path: string;
  bytes: number;
  /** Changes whenever the file does: what a resumed read checks (`If-Range`). */
  etag: string;
}

/** What is exported: a claim's volume, or a VolumeSnapshot's data. */
export interface ExportSource {
  kind: 'PersistentVolumeClaim' | 'VolumeSnapshot';
  namespace: string;
  name: string;
}

/** What the agent endpoint asks of the node's exporter. */
export interface VolumeExports {
  /** The export of `source` for copy `target` (the target claim's uid), made on the first ask. */
  prepareExport(source: ExportSource, target: string): Promise<ExportedVolume>;
  /** Drops the export of `source` for copy `target` (done, or given up). */
  releaseExport(source: ExportSource, target: string): Promise<void>;
}

/** What the exporter needs; see the fields. */
export interface VolumeExporterOptions {
  client: Client;
  nodeName: string;
  /** The agent's data directory: exports go to `exports/` below it. */
  dataDir: string;
  live: LiveGuests | undefined;
  logger: Logger;
  /** How long a request waits for an export being made before it is told to come back (503). Default 20 s. */
  answerWithinMs?: number;
  /** How often exports whose target claim is gone (a copy given up) are removed. Default 10 min. */
  sweepMs?: number;
}

/** A copy's id is a claim's uid: nothing a file name could smuggle. */
const targetPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The directory of a node's exports. */
export function exportsRoot(dataDir: string): string {
  return join(dataDir, 'exports');
}

/** See the module comment. */
export class VolumeExporter implements VolumeExports {
  private readonly making = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  private readonly logger: Logger;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly options: VolumeExporterOptions) {
    this.logger = options.logger.child({ component: 'volume-exporter', node: options.nodeName });
    const sweep = (): void => {
      this.sweep().catch((err: unknown) => { this.logger.warn('cannot sweep the exports', { err: err instanceof Error ? err.message : String(err) }); });
    };
    this.sweeper = setInterval(sweep, options.sweepMs ?? 600_000);
    this.sweeper.unref();
    // Once at start too: what a copy given up while the agent was down left.
    setTimeout(sweep, 1000).unref();
  }

  /**
   * Removes the exports whose target claim no longer exists: a copy given
   * up (its claim or DataVolume deleted) never releases its export.
   */
  async sweep(): Promise<string[]> {
    const names = await readdir(exportsRoot(this.options.dataDir)).catch(() => [] as string[]);
    if (names.length === 0) return [];
    const claims = await this.options.client.list(resources.persistentVolumeClaims);
    const alive = new Set(claims.items.map((c) => c.metadata.uid ?? ''));
    const removed: string[] = [];
    for (const name of names) {
      const target = name.replace(/\.qcow2(\.partial)?$/, '');
      if (alive.has(target) || this.making.has(target)) continue;
      await rm(join(exportsRoot(this.options.dataDir), name), { force: true });
      removed.push(name);
    }
    if (removed.length > 0) this.logger.info('exports of copies given up removed', { files: removed });
    return removed;
  }

  async prepareExport(claim: ExportSource, target: string): Promise<ExportedVolume> {
    const file = this.fileOf(target);
    const done = await describe(file);
    if (done !== undefined) return done;
    let making = this.making.get(target);
    if (making === undefined) {
      making = this.make(claim, target, file).finally(() => this.making.delete(target));
      this.making.set(target, making);
    }
    const within = this.options.answerWithinMs ?? 20_000;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => { resolve('late'); }, within); });
    try {
      if ((await Promise.race([making, late])) === 'late') {
        throw new ApiError('ServiceUnavailable', `the export of ${claim.kind} ${claim.namespace}/${claim.name} for copy ${target} is still being made on node ${this.options.nodeName}: ask again in a moment`);
      }
    } finally {
      clearTimeout(timer);
    }
    const made = await describe(file);
    if (made === undefined) throw new ApiError('ServiceUnavailable', `the export of ${claim.kind} ${claim.namespace}/${claim.name} vanished on node ${this.options.nodeName}: ask again`);
    return made;
  }

  async releaseExport(_source: ExportSource, target: string): Promise<void> {
    const file = this.fileOf(target);
    await this.making.get(target)?.catch(() => undefined);
    await rm(file, { force: true });
    await rm(`${file}.partial`, { force: true });
    this.logger.info('export released', { target });
  }

  /** Stops exports being made (their partial files are made again on the next ask). */
  stop(): void {
    clearInterval(this.sweeper);
    this.abort.abort(new Error('the node agent is stopping'));
  }

  private fileOf(target: string): string {
    if (!targetPattern.test(target)) throw new ApiError('BadRequest', `"${target}" is not a copy id: pass the target claim's uid as ?target=UID`);
    return join(exportsRoot(this.options.dataDir), `${target}.qcow2`);
  }

  /** Makes the export, or throws the ApiError that says why it cannot be made (now). */
  private async make(source: ExportSource, target: string, file: string): Promise<void> {
    await mkdir(exportsRoot(this.options.dataDir), { recursive: true, mode: 0o700 });
    const started = Date.now();
    if (source.kind === 'VolumeSnapshot') await this.makeOfSnapshot(source, file);
    else await this.makeOfClaim(source, target, file);
    this.logger.info('export made', { kind: source.kind, namespace: source.namespace, name: source.name, target, ms: Date.now() - started });
  }

  /** A VolumeSnapshot's data, flattened: its files never change, so no freeze and no lock. */
  private async makeOfSnapshot(source: ExportSource, file: string): Promise<void> {
    const { client, nodeName } = this.options;
    const what = `VolumeSnapshot ${source.namespace}/${source.name}`;
    const snapshot = await client.tryGet(volumeSnapshots, source.namespace, source.name);
    if (snapshot === undefined) throw new ApiError('NotFound', `${what} does not exist, so it cannot be restored: restore from another snapshot`);
    if (booleanAt(snapshot, 'status', 'readyToUse') !== true) throw new ApiError('ServiceUnavailable', `${what} is not ready to use yet: its copy starts once it is`);
    const contentName = stringAt(snapshot, 'status', 'boundVolumeSnapshotContentName') ?? '';
    const content = contentName === '' ? undefined : await client.tryGet(volumeSnapshotContents, undefined, contentName);
    const handle = parseSnapshotHandle(stringAt(content, 'status', 'snapshotHandle'));
    if (handle === undefined) throw new ApiError('BadRequest', `${what} has no ${localProvisioner} snapshot handle, so this node cannot export it`);
    if (handle.node !== nodeName) throw new ApiError('ServiceUnavailable', `${what} is on node ${handle.node}, not on node ${nodeName}: ask that node's agent`);
    const dir = snapshotDir(this.options.dataDir, handle.id);
    const meta = await readSnapshotMeta(dir);
    if (meta === undefined) throw new ApiError('NotFound', `the data of ${what} is missing on node ${nodeName} (${dir}): take the snapshot again`);
    await exportSnapshot(dir, meta, { to: file, signal: this.abort.signal });
  }

  /** A claim's volume at one instant (its guest, if any, runs on). */
  private async makeOfClaim(claim: ClaimKey, target: string, file: string): Promise<void> {
    const { client, nodeName } = this.options;
    const what = `PersistentVolumeClaim ${claim.namespace}/${claim.name}`;
    const pvc = await client.tryGet(resources.persistentVolumeClaims, claim.namespace, claim.name);
    if (pvc === undefined) throw new ApiError('NotFound', `${what} does not exist, so it cannot be copied: recreate it, or clone from another claim`);
    const volumeName = stringAt(pvc, 'spec', 'volumeName') ?? '';
    const pv = volumeName === '' ? undefined : await client.tryGet(resources.persistentVolumes, undefined, volumeName);
    if (pv === undefined) throw new ApiError('ServiceUnavailable', `${what} is not bound to a volume yet: its copy starts once it is`);
    let volume;
    try {
      volume = localVolumeOf(pvc, pv);
    } catch (err) {
      throw new ApiError('BadRequest', `${what} cannot be copied: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (volumeEncryptionOf(pv) !== undefined) throw new ApiError('BadRequest', `${what} is encrypted, and copies of encrypted volumes are not supported yet`);
    if (volume.node !== nodeName) throw new ApiError('ServiceUnavailable', `${what} is on node ${volume.node}, not on node ${nodeName}: ask that node's agent`);
    const waiting = await exportVolume(volume, claim, { id: target, to: file, live: this.options.live, signal: this.abort.signal });
    if (waiting !== undefined) throw new ApiError('ServiceUnavailable', `${what} cannot be exported yet: ${waiting.wait}`);
  }
}

async function describe(file: string): Promise<ExportedVolume | undefined> {
  try {
    const s = await stat(file);
    return { path: file, bytes: s.size, etag: `"${s.ino.toString(16)}-${s.size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}"` };
  } catch {
    return undefined;
  }
}
