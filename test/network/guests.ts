/**
 * Real guests on the pod network for the network tests: a VMI of the test
 * guest with one pod NIC, waiting for it to run and be ready on its
 * console, and commands typed on that console with their exit status.
 */
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { recordsAt } from '../../src/api/kinds/read.js';
import { TEST_GUEST_IMAGE, TEST_GUEST_READY_MARKER, importTestGuest } from '../../src/agent/images/index.js';
import { networkNames } from '../../src/net/pod/names.js';
import { eventually } from '../../src/testing/wait.js';
import { ConsoleCapture, closeVmEnv, openVmEnv, phaseOf, vmis } from '../e2e/vm-support.js';
import type { ApiAccess, VmEnv } from '../e2e/vm-support.js';
import { hostNetworkState } from './support.js';

const bootMs = 360_000;

/** A server and agent for a file of guest tests, with the test guest imported. */
export async function openGuestEnv(prefix: string): Promise<VmEnv> {
  const env = await openVmEnv(prefix);
  await importTestGuest(env.images);
  return env;
}

/** Closes it, and checks that the stopped agent left no pod network (bridge, tables, sandboxes) behind. */
export async function closeGuestEnv(env: VmEnv): Promise<void> {
  await closeVmEnv(env);
  const names = networkNames(env.agentDir);
  assert.deepEqual(hostNetworkState([names.bridge, names.table, names.policyTable, names.netnsPrefix]), { netns: [], links: [], tables: [] }, 'the stopped agent left its pod network behind');
}

/** A VMI of the test guest in `default` with its pod NIC bound by `binding`. */
export function podGuest(name: string, binding: 'masquerade' | 'bridge', options: { mac?: string; labels?: Record<string, string>; ports?: { port: number; protocol?: 'TCP' | 'UDP' }[] } = {}): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'default', ...(options.labels === undefined ? {} : { labels: options.labels }) },
    spec: {
      terminationGracePeriodSeconds: 0,
      domain: {
        devices: {
          autoattachGraphicsDevice: false,
          disks: [{ name: 'root', disk: { bus: 'virtio' } }],
          interfaces: [{ name: 'default', [binding]: {}, ...(options.mac === undefined ? {} : { macAddress: options.mac }), ...(options.ports === undefined ? {} : { ports: options.ports }) }],
        },
        memory: { guest: '128Mi' },
      },
      networks: [{ name: 'default', pod: {} }],
      volumes: [{ name: 'root', containerDisk: { image: TEST_GUEST_IMAGE } }],
    },
  };
}

/** Waits for VMI `name` to run with its interfaces reported and its guest to be ready; its console. */
export async function bootedGuest(env: VmEnv | ApiAccess, name: string): Promise<{ vmi: KObject; console: ConsoleCapture }> {
  const vmi = await eventually(async () => {
    const found = await env.client.tryGet(vmis, 'default', name);
    if (phaseOf(found) === 'Failed') throw new Error(`VMI ${name} failed: ${JSON.stringify(found?.status)}`);
    return phaseOf(found) === 'Running' && recordsAt(found, 'status', 'interfaces').length > 0 ? found : undefined;
  }, { what: `VMI ${name} running with interfaces`, timeoutMs: bootMs, intervalMs: 100 });
  const console = await ConsoleCapture.open(env, name);
  await eventually(() => console.text().includes(TEST_GUEST_READY_MARKER), { what: `the guest of ${name} to be ready`, timeoutMs: bootMs, intervalMs: 200 });
  return { vmi, console };
}

/** Types `command` on the console and waits for `marker-<exit status>` after it; the console text from the command on. */
export async function runOnConsole(console: ConsoleCapture, command: string, marker: string): Promise<string> {
  const from = console.text().length;
  console.type(`${command}; echo ${marker}-$?`);
  return eventually(() => {
    const text = console.text().slice(from);
    return new RegExp(`${marker}-\\d`).test(text.replace(`echo ${marker}-$?`, '')) ? text : undefined;
  }, { what: `"${command}" to finish in the guest`, timeoutMs: 60_000, intervalMs: 200 });
}

/** A NetworkPolicy isolating the `app: web` guests for ingress, with no rule: nothing reaches them. */
export const denyWeb = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-web, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
`;

/** A NetworkPolicy letting the `app: client` guests reach the `app: web` guests on TCP port 80. */
export const allowClient = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{protocol: TCP, port: 80}]
`;
