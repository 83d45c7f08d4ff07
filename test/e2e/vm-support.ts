/**
 * Shared machinery for the VM end-to-end tests: a real server with its
 * controllers, scheduler and node agent (TCG), a client to it, VM
 * manifests, a recorder of every watch event of one object, the guest's
 * serial console captured through the API (`consolelog` plus the console
 * WebSocket), and the host-side leak checks (QEMU processes, VMI
 * directories, cgroups).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { WebSocket } from 'ws';
import { Cgroups } from '../../src/agent/cgroups.js';
import type { KObject } from '../../src/api/object.js';
import { stringAt } from '../../src/api/kinds/read.js';
import type { ImageStore } from '../../src/agent/images/index.js';
import { HttpClient, resources } from '../../src/client/index.js';
import type { ClientWatchEvent, ResourceRef } from '../../src/client/index.js';
import { dialStream, toBuffer } from '../../src/console/index.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';
import type { ServiceNetwork } from '../../src/apiserver/index.js';
import { qemuPidsUnder } from '../agent/support.js';

export const vms = resources.virtualMachines;
export const vmis = resources.virtualMachineInstances;

export function hasQemu(): boolean {
  try {
    execFileSync('which', ['qemu-system-x86_64']);
    return true;
  } catch {
    return false;
  }
}

/** Skip reason for the tests that run QEMU, or false. */
export const skipWithoutQemu: string | false = hasQemu() ? false : 'qemu-system-x86_64 is not installed';

/** A server reached by URL, token and CA (a `vireo server` process), with a client of it. */
export interface ApiAccess {
  url: string;
  token: string;
  caCert: string;
  client: HttpClient;
}

export interface VmEnv {
  server: TestServer;
  client: HttpClient;
  images: ImageStore;
  /** The node agent's data directory (`vmis/<uid>/` below it). */
  agentDir: string;
}

/**
 * A server with controllers and a node agent, for a whole test file (open
 * it in `before`, close it in `after`) or one test ({@link startVmEnv}).
 */
export async function openVmEnv(userAgent: string, options: { serviceNetwork?: ServiceNetwork } = {}): Promise<VmEnv> {
  const server = await startTestServer({ controllers: true, agent: true, ...options });
  const client = new HttpClient({ server: server.url, token: server.token, caCert: server.pki.caCert, userAgent });
  const images = server.plane.workloads.images;
  if (images === undefined) throw new Error('the test server runs no node agent: startTestServer({ agent: true }) gave no image store');
  // The layout startTestServer gives its agent: `<dir>/node`, the agent's files in `agent/`.
  return { server, client, images, agentDir: join(server.dir, 'node', 'agent') };
}

/** Stops the server; a QEMU of its data directory that outlived the stop (a failed test) is killed, so no test leaves a guest to the next. */
export async function closeVmEnv(env: VmEnv): Promise<void> {
  env.client.close();
  try {
    await env.server.stop();
  } finally {
    for (const pid of qemuPidsUnder(env.server.dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** {@link openVmEnv} for one test, closed when it ends, pass or fail. */
export async function startVmEnv(t: TestContext): Promise<VmEnv> {
  const env = await openVmEnv('vireo-e2e-test');
  t.after(() => closeVmEnv(env));
  return env;
}

export interface VmOptions {
  runStrategy: string;
  image: string;
  graceSeconds: number;
  memory?: string;
  /** A NoCloud user-data (a `#!` script or `#cloud-config`). */
  userData?: string;
}

/** A VM of one containerDisk (and a NoCloud disk when `userData` is set), no graphics. */
export function vmManifest(name: string, options: VmOptions): KObject {
  const disks: unknown[] = [{ name: 'root', disk: { bus: 'virtio' } }];
  const volumes: unknown[] = [{ name: 'root', containerDisk: { image: options.image } }];
  if (options.userData !== undefined) {
    disks.push({ name: 'cloudinit', disk: { bus: 'virtio' } });
    volumes.push({ name: 'cloudinit', cloudInitNoCloud: { userData: options.userData } });
  }
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default' },
    spec: {
      runStrategy: options.runStrategy,
      template: {
        spec: {
          terminationGracePeriodSeconds: options.graceSeconds,
          domain: { devices: { autoattachGraphicsDevice: false, disks }, memory: { guest: options.memory ?? '64Mi' }, resources: {} },
          volumes,
        },
      },
    },
  };
}

export function phaseOf(obj: KObject | undefined): string | undefined {
  return stringAt(obj, 'status', 'phase');
}

export function printableOf(obj: KObject | undefined): string | undefined {
  return stringAt(obj, 'status', 'printableStatus');
}

/**
 * Every watch event of the object `name` of `ref` in `default`, from
 * before the test creates it: the history a test asserts on, where
 * polling could miss a short-lived state.
 */
export class History {
  readonly events: ClientWatchEvent[] = [];
  private readonly abort = new AbortController();
  private done: Promise<void> = Promise.resolve();
  private endedEarly = false;

  private constructor(
    private readonly client: HttpClient,
    private readonly ref: ResourceRef,
    private readonly name: string,
  ) {}

  static async start(t: TestContext, client: HttpClient, ref: ResourceRef, name: string): Promise<History> {
    const history = new History(client, ref, name);
    const list = await client.list(ref, { namespace: 'default', fieldSelector: `metadata.name=${name}` });
    const watching = client.watch(ref, { namespace: 'default', fieldSelector: `metadata.name=${name}`, resourceVersion: list.metadata.resourceVersion ?? '0' }, (e) => history.events.push(e), history.abort.signal);
    history.done = watching.then(
      () => { history.endedEarly = !history.abort.signal.aborted; },
      () => { history.endedEarly = !history.abort.signal.aborted; },
    );
    t.after(() => history.stop());
    return history;
  }

  /** The objects seen, in order (ADDED, MODIFIED and DELETED). */
  objects(): KObject[] {
    return this.events.filter((e) => e.type === 'ADDED' || e.type === 'MODIFIED' || e.type === 'DELETED').map((e) => e.object);
  }

  /** The uids of the objects created, in order. */
  createdUids(): string[] {
    return this.events.filter((e) => e.type === 'ADDED').map((e) => e.object.metadata.uid ?? '');
  }

  /** The distinct successive values of `read` over the history (a change to the same value is one entry). */
  transitions(read: (obj: KObject) => string | undefined): string[] {
    const out: string[] = [];
    for (const obj of this.objects()) {
      const value = read(obj);
      if (value !== undefined && out[out.length - 1] !== value) out.push(value);
    }
    return out;
  }

  /** Throws when the server ended the watch: a history with a hole in it proves nothing. */
  assertComplete(): void {
    if (this.endedEarly) throw new Error(`the watch on ${this.ref.plural}/${this.name} ended before the test did: its history is incomplete`);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

/**
 * A guest's serial console as the API serves it, from its first line:
 * the console WebSocket from now on, and the kept log (`consolelog`) up to
 * now. Open it while the VMI runs; it follows that VMI until its guest ends.
 */
export class ConsoleCapture {
  private streamed = '';
  private kept = '';
  private ended = false;

  private constructor(private readonly ws: WebSocket) {}

  /** Opens VMI `name`'s console through the test server of `env`, or through any server (`ApiAccess`: a server process of the lab tests). */
  static async open(env: VmEnv | ApiAccess, name: string): Promise<ConsoleCapture> {
    const access = 'server' in env ? { url: env.server.url, token: env.server.token, caCert: env.server.pki.caCert, client: env.client } : env;
    const base = `/apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachineinstances/${name}`;
    const ws = await dialStream({ server: access.url, token: access.token, caCert: access.caCert, path: `${base}/console` });
    const capture = new ConsoleCapture(ws);
    ws.on('message', (data) => { capture.streamed += toBuffer(data).toString('utf8'); });
    ws.once('close', () => { capture.ended = true; });
    // Read after the stream opened: whatever the guest printed before is in the log, whatever after in the stream.
    const res = await access.client.raw('GET', `${base}/consolelog`);
    if (res.status !== 200) throw new Error(`GET ${base}/consolelog answered ${res.status}: ${res.body}`);
    capture.kept = res.body;
    return capture;
  }

  text(): string {
    return this.kept + this.streamed;
  }

  /** Types `line` and Enter on the guest's console. */
  type(line: string): void {
    this.ws.send(Buffer.from(`${line}\r`), { binary: true });
  }

  /** True once the server closed the stream (the guest ended). */
  get closed(): boolean {
    return this.ended;
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Uids with a directory under the agent's `vmis/`. */
export function vmiDirs(env: VmEnv): string[] {
  const root = join(env.agentDir, 'vmis');
  return existsSync(root) ? readdirSync(root) : [];
}

/** Live QEMU processes started for this test's server (their command line names its data directory). */
export function leftoverQemus(env: VmEnv): number[] {
  return qemuPidsUnder(env.server.dir);
}

/** The per-VMI cgroup directories still on the host for any of `uids` (none where the agent runs without cgroups). */
export async function listVmiCgroups(uids: readonly string[]): Promise<string[]> {
  const cgroups = await Cgroups.detect();
  return uids.flatMap((uid) => cgroups.paths(uid)).filter((path) => existsSync(path));
}
