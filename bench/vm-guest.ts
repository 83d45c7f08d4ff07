/**
 * The VM benchmark's guests and the API calls about them: VMI manifests of
 * the test guest, creating and deleting them, and watching a serial log
 * file for the first cloud-init line.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { TEST_GUEST_IMAGE } from '../src/agent/images/guest.js';
import type { BenchClient } from './http.js';
import { sleep, waitUntil } from './vm-proc.js';

export const benchNamespace = 'vm-bench';

const vmisPath = `/apis/kubevirt.io/v1/namespaces/${benchNamespace}/virtualmachineinstances`;

/** A line the guest's cloud-init prints (`cloud-init: …`, at the start of a line). */
const cloudInitLine = /(?:^|[\r\n])cloud-init: /;

export interface GuestShape {
  /** `domain.memory.guest`. */
  memory: string;
  /** `resources.requests.cpu`, when the default (vCPUs / cpuAllocationRatio) would not fit the node. */
  cpuRequest?: string;
  labels?: Record<string, string>;
}

/** A VMI booting the test guest's containerDisk with a cloud-init user-data script (like the demo VM's). */
export function guestVmi(name: string, shape: GuestShape): string {
  return JSON.stringify({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: benchNamespace, labels: { app: 'vm-bench', ...shape.labels } },
    spec: {
      domain: {
        cpu: { cores: 1 },
        memory: { guest: shape.memory },
        ...(shape.cpuRequest === undefined ? {} : { resources: { requests: { cpu: shape.cpuRequest } } }),
        devices: { disks: [{ name: 'rootdisk', disk: { bus: 'virtio' } }, { name: 'cloudinit', disk: { bus: 'virtio' } }] },
      },
      terminationGracePeriodSeconds: 0,
      volumes: [
        { name: 'rootdisk', containerDisk: { image: TEST_GUEST_IMAGE } },
        { name: 'cloudinit', cloudInitNoCloud: { userData: '#!/bin/sh\necho "hello from $(hostname)"\n' } },
      ],
    },
  });
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** What the benchmark reads of a VMI: name, uid and phase. */
export interface VmiFacts {
  name: string;
  uid: string;
  phase: string;
}

/** Reads name, uid and phase from a VMI (parsed JSON); undefined when it is not one. */
export function vmiFacts(value: unknown): VmiFacts | undefined {
  const metadata = asRecord(asRecord(value)?.metadata);
  const status = asRecord(asRecord(value)?.status);
  const name = metadata?.name;
  const uid = metadata?.uid;
  if (typeof name !== 'string' || typeof uid !== 'string') return undefined;
  const phase = status?.phase;
  return { name, uid, phase: typeof phase === 'string' ? phase : '' };
}

/** A watch line: its type and the VMI it carries. */
export function watchEvent(line: string): { type: string; vmi: VmiFacts } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  const event = asRecord(parsed);
  const vmi = vmiFacts(event?.object);
  return typeof event?.type === 'string' && vmi !== undefined ? { type: event.type, vmi } : undefined;
}

export async function createNamespace(client: BenchClient): Promise<void> {
  const res = await client.call('POST', '/api/v1/namespaces', JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: benchNamespace } }));
  if (res.status !== 201 && res.status !== 409) throw new Error(`create namespace: ${res.status} ${res.body}`);
}

/** Creates a VMI and returns its facts from the reply. */
export async function createVmi(client: BenchClient, body: string): Promise<VmiFacts> {
  const res = await client.call('POST', vmisPath, body);
  const facts = res.status === 201 ? vmiFacts(JSON.parse(res.body)) : undefined;
  if (facts === undefined) throw new Error(`create VMI: ${res.status} ${res.body}`);
  return facts;
}

export async function listVmis(client: BenchClient): Promise<{ items: VmiFacts[]; resourceVersion: string }> {
  const res = await client.call('GET', vmisPath);
  if (res.status !== 200) throw new Error(`list VMIs: ${res.status} ${res.body}`);
  const list = asRecord(JSON.parse(res.body));
  const items = Array.isArray(list?.items) ? list.items.map(vmiFacts).filter((v) => v !== undefined) : [];
  const rv = asRecord(list?.metadata)?.resourceVersion;
  return { items, resourceVersion: typeof rv === 'string' ? rv : '' };
}

/** The path of a watch on the benchmark's VMIs from `resourceVersion`. */
export function watchVmisPath(resourceVersion: string): string {
  return `${vmisPath}?watch=true&resourceVersion=${encodeURIComponent(resourceVersion)}`;
}

/** Deletes every VMI in the namespace (8 requests at a time) and waits until none is left. */
export async function deleteAllVmis(client: BenchClient, timeoutMs: number): Promise<void> {
  const { items } = await listVmis(client);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < items.length) {
        const vmi = items[next++];
        if (vmi === undefined) continue;
        const res = await client.call('DELETE', `${vmisPath}/${vmi.name}`);
        if (res.status !== 200 && res.status !== 202 && res.status !== 404) throw new Error(`delete VMI ${vmi.name}: ${res.status} ${res.body}`);
      }
    }),
  );
  await waitUntil(async () => (await listVmis(client)).items.length === 0, { what: 'every VMI to be deleted', timeoutMs, intervalMs: 100 });
}

/** The serial log the agent keeps for the VMI with `uid`. */
export function serialLogOf(dataDir: string, uid: string): string {
  return join(dataDir, 'agent', 'vmis', uid, 'serial.log');
}

/**
 * Polls `file` every `intervalMs` (reading only what was appended) until
 * it holds a cloud-init line; resolves with `performance.now()` at that
 * poll. The file may not exist yet.
 */
export async function firstCloudInitInFile(file: string, options: { intervalMs: number; timeoutMs: number }): Promise<number> {
  const deadline = performance.now() + options.timeoutMs;
  let fd: number | undefined;
  let position = 0;
  // The tail of the previous read, so a line split across reads still matches.
  let carry = '';
  const buffer = Buffer.alloc(64 * 1024);
  try {
    for (;;) {
      if (fd === undefined) {
        try {
          fd = openSync(file, 'r');
        } catch {
          // Not created yet.
        }
      }
      if (fd !== undefined) {
        for (;;) {
          const n = readSync(fd, buffer, 0, buffer.length, position);
          if (n === 0) break;
          position += n;
          const text = carry + buffer.subarray(0, n).toString('latin1');
          if (cloudInitLine.test(text)) return performance.now();
          // Led by a space so `^` never matches mid-line.
          carry = ` ${text.slice(-16)}`;
        }
      }
      if (performance.now() >= deadline) throw new Error(`no cloud-init line in ${file} within ${options.timeoutMs} ms`);
      await sleep(options.intervalMs);
    }
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** True when `text` holds a cloud-init line. */
export function hasCloudInitLine(text: string): boolean {
  return cloudInitLine.test(text);
}
