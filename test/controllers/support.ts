/**
 * What the controller tests share: a real in-process API server with an
 * HTTPS client, manifests for VMs and nodes, and the node agent's side of
 * the protocol (phase and condition reports on the VMI), played by the test.
 */
import type { KObject } from '../../src/api/object.js';
import { arrayAt, recordAt, stringAt } from '../../src/api/kinds/read.js';
import { HttpClient, resources } from '../../src/client/index.js';
import type { Client, ResourceRef } from '../../src/client/index.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';
import { eventually } from '../../src/testing/wait.js';

export { eventually };

export interface Env {
  server: TestServer;
  client: HttpClient;
  close(): Promise<void>;
}

/** A fresh server and a client for it. */
export async function startEnv(): Promise<Env> {
  const server = await startTestServer();
  // The controllers under test, and the test acting as the agent, write as Vireo's components do.
  const client = new HttpClient({ server: server.url, token: server.componentToken, caCert: server.pki.caCert, userAgent: 'vireo-controller-test' });
  return {
    server,
    client,
    async close() {
      client.close();
      await server.stop();
    },
  };
}

/** A small VM in `default`: a containerDisk, 128Mi, label `app: <name>`. */
export function vmManifest(name: string, spec: Record<string, unknown> = { runStrategy: 'Always' }, templateSpec: Record<string, unknown> = {}): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default' },
    spec: {
      ...spec,
      template: {
        metadata: { labels: { app: name }, annotations: { 'example.com/note': 'from-template' } },
        spec: {
          domain: { devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] }, memory: { guest: '128Mi' } },
          volumes: [{ name: 'root', containerDisk: { image: 'localhost/vireo/tiny:latest' } }],
          ...templateSpec,
        },
      },
    },
  };
}

/** A VMI spec with `memory` of guest memory. */
export function vmiSpec(memory: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    domain: { devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] }, memory: { guest: memory } },
    volumes: [{ name: 'root', containerDisk: { image: 'localhost/vireo/tiny:latest' } }],
    ...extra,
  };
}

/** A Node as an agent registers it. */
export function nodeManifest(name: string, options: { cpu: string; memory: string; labels?: Record<string, string>; taints?: unknown[]; ready?: 'True' | 'False' | 'Unknown' }): KObject {
  const capacity = { cpu: options.cpu, memory: options.memory, pods: '110' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...options.labels } },
    spec: options.taints === undefined ? {} : { taints: options.taints },
    status: { capacity, allocatable: capacity, conditions: [{ type: 'Ready', status: options.ready ?? 'True', reason: 'KubeletReady', message: 'ready' }] },
  };
}

/** Reads one object, or undefined. */
export function read(client: HttpClient, ref: ResourceRef, name: string, namespace = 'default'): Promise<KObject | undefined> {
  return client.tryGet(ref, ref.namespaced ? namespace : undefined, name);
}

/** `status.printableStatus` of VM `name`. */
export async function printable(client: HttpClient, name: string): Promise<string | undefined> {
  return stringAt(await read(client, resources.virtualMachines, name), 'status', 'printableStatus');
}

/** The condition `type` of `obj`'s status. */
export function condition(obj: KObject | undefined, type: string): Record<string, unknown> | undefined {
  return arrayAt(obj, 'status', 'conditions').map((c) => recordAt(c) ?? {}).find((c) => c.type === type);
}

/**
 * Plays the node agent: sets the VMI's phase (recording the transition as
 * the agent does) and, optionally, its conditions.
 */
export async function report(client: HttpClient, name: string, phase: string, conditions?: Record<string, unknown>[]): Promise<KObject> {
  const vmi = await client.get(resources.virtualMachineInstances, 'default', name);
  const status = recordAt(vmi, 'status') ?? {};
  const history = [...arrayAt(status, 'phaseTransitionTimestamps'), { phase, phaseTransitionTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }];
  return client.patch(resources.virtualMachineInstances, 'default', name, 'merge', {
    metadata: { resourceVersion: vmi.metadata.resourceVersion },
    status: { ...status, phase, phaseTransitionTimestamps: history, ...(conditions === undefined ? {} : { conditions }) },
  });
}

/** A Ready condition as the agent reports it. */
export function readyCondition(status: 'True' | 'False'): Record<string, unknown> {
  return { type: 'Ready', status, lastProbeTime: null, lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
}

/** Waits for VMI `name` to exist with a uid other than `not`, and returns it. */
export function vmiAppears(client: HttpClient, name: string, not?: string): Promise<KObject> {
  return eventually(async () => {
    const vmi = await read(client, resources.virtualMachineInstances, name);
    return vmi !== undefined && vmi.metadata.uid !== not && vmi.metadata.deletionTimestamp === undefined ? vmi : undefined;
  }, { what: `VMI ${name}${not === undefined ? '' : ' (a new one)'}` });
}

/** Waits for VMI `name` (with uid `uid`, when given) to be gone. */
export async function vmiGone(client: HttpClient, name: string, uid?: string): Promise<void> {
  await eventually(async () => {
    const vmi = await read(client, resources.virtualMachineInstances, name);
    return vmi === undefined || (uid !== undefined && vmi.metadata.uid !== uid);
  }, { what: `VMI ${name} to be deleted` });
}

/** Events about `name`, through the field selector `kubectl describe` uses. */
export async function eventsFor(client: HttpClient, name: string, namespace = 'default'): Promise<KObject[]> {
  return (await client.list(resources.events, { namespace, fieldSelector: `involvedObject.name=${name}` })).items;
}

/**
 * The client, with watch events delivered `lagMs` late: an informer on it
 * trails the API the way a busy one does, so tests see what a controller
 * does when its cache is behind its own writes.
 */
export function laggingClient(client: Client, lagMs: number): Client {
  return {
    get: (...args) => client.get(...args),
    tryGet: (...args) => client.tryGet(...args),
    list: (...args) => client.list(...args),
    create: (...args) => client.create(...args),
    update: (...args) => client.update(...args),
    patch: (...args) => client.patch(...args),
    delete: (...args) => client.delete(...args),
    raw: (...args) => client.raw(...args),
    watch: (ref, query, onEvent, signal) => client.watch(ref, query, (event) => { setTimeout(() => { onEvent(event); }, lagMs); }, signal),
  };
}
