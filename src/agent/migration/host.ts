/**
 * What a node's migrations need from the node's VMI runner (`VmiRunner`
 * implements it): its running guests, a QEMU started waiting for a guest,
 * and the hand-over of a guest in either direction.
 */
import type { KObject } from '../../api/object.js';
import type { Machine } from '../machine.js';
import type { ClaimFile } from '../volumes.js';

export interface MigrationHost {
  /** The running machine of VMI `namespace/name` on this node. */
  liveMachine(namespace: string, name: string): Machine | undefined;
  holdForMigration(key: string, uid: string): void;
  migrationEnded(uid: string): void;
  handOver(uid: string): Machine | undefined;
  /** `claimFiles`: the target's copies of the VMI's claims, by volume name. */
  launchIncoming(vmi: KObject, signal: AbortSignal, claimFiles?: Record<string, ClaimFile>): Promise<Machine>;
  arrived(machine: Machine): void;
  removeGuestFiles(uid: string): Promise<void>;
}

/** The writable block nodes of a QEMU (its disks' format nodes and EFI variables): what a block migration copies. */
export async function writableNodes(machine: Machine): Promise<string[]> {
  const blocks = await machine.execute('query-block');
  const nodes: string[] = [];
  for (const block of blocks) {
    const node = block.inserted?.['node-name'];
    if (block.inserted !== undefined && !block.inserted.ro && node !== undefined) nodes.push(node);
  }
  return nodes.sort();
}

/** `HOST:PORT` for QEMU's URIs (IPv6 in brackets). */
export function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * What a migration of `machine` copies, in bytes, as KubeVirt sizes it for
 * the completion timeout: the guest's memory plus what the writable disks
 * hold (their files' allocated bytes).
 */
export async function migrationDataBytes(machine: Machine): Promise<number> {
  const memory = await machine.execute('query-memory-size-summary');
  let bytes = memory['base-memory'] + (memory['plugged-memory'] ?? 0);
  for (const block of await machine.execute('query-block')) {
    if (block.inserted !== undefined && !block.inserted.ro) bytes += block.inserted.image['actual-size'] ?? 0;
  }
  return bytes;
}
