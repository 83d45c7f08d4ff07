/**
 * What the node runs, re-derived at agent start from the VMI directories:
 * a live QEMU (its pid alive, with this VMI's QMP socket on its command
 * line) is reattached as it is, without restarting the guest; a directory
 * whose QEMU has ended is handed over to be reported and cleaned.
 */
import { readdir, rm } from 'node:fs/promises';
import type { Logger } from '../log/logger.js';
import type { Runtime } from './actions.js';
import type { Cgroups } from './cgroups.js';
import { readRecord, vmiLayout, vmisRoot } from './layout.js';
import { Machine, classifyExit } from './machine.js';
import { isQemuAlive, readPidFile, signalQemu } from './qemu-process.js';

/** What recovery needs. */
export interface RecoverOptions {
  dataDir: string;
  cgroups: Cgroups;
  logger: Logger;
  /** Called with a VMI key when its machine changes. */
  enqueue: (key: string) => void;
  /** Called with each guest panic of a reattached machine (`GUEST_PANICKED`). */
  onPanic?: ((namespace: string, name: string, info: Record<string, unknown> | undefined) => void) | undefined;
  signal: AbortSignal;
}

/** Every VMI runtime found on the node. */
export async function recoverRuntimes(options: RecoverOptions): Promise<Runtime[]> {
  let uids: string[];
  try {
    uids = await readdir(vmisRoot(options.dataDir));
  } catch {
    return [];
  }
  const found: Runtime[] = [];
  for (const uid of uids) {
    const runtime = await recoverOne(uid, options);
    if (runtime !== undefined) found.push(runtime);
  }
  return found;
}

async function recoverOne(uid: string, options: RecoverOptions): Promise<Runtime | undefined> {
  const layout = vmiLayout(options.dataDir, uid);
  const record = await readRecord(layout);
  if (record === undefined || record.uid !== uid) {
    // A start interrupted before QEMU was spawned: nothing ran, nothing to report.
    await rm(layout.dir, { recursive: true, force: true });
    await options.cgroups.remove(uid);
    return undefined;
  }
  const key = `${record.namespace}/${record.name}`;
  const logger = options.logger.child({ namespace: record.namespace, name: record.name, uid });
  const pid = record.pid ?? (await readPidFile(layout.pidFile));
  if (pid !== undefined && isQemuAlive(pid, layout.qmpSocket)) {
    try {
      const machine = await Machine.connect({ key, layout, record: { ...record, pid }, logger, onChange: () => { options.enqueue(key); }, onPanic: (info) => { options.onPanic?.(record.namespace, record.name, info); } }, undefined, options.signal);
      logger.info('reattached to a running QEMU', { pid, runState: machine.runState });
      return { kind: 'machine', machine };
    } catch (err) {
      if (options.signal.aborted) throw err;
      logger.warn('a QEMU of this node does not answer on QMP; killing it', { pid, err });
      signalQemu(pid, layout.qmpSocket, 'SIGKILL');
      return { kind: 'leftover', key, uid, layout, exit: { phase: 'Failed', message: `QEMU pid ${pid} stopped answering on QMP and was killed` } };
    }
  }
  const exit = await classifyExit(layout, 'it ended while the agent was not running');
  logger.info('found the directory of a QEMU that has ended', { pid, phase: exit.phase });
  return { kind: 'leftover', key, uid, layout, exit };
}
