/**
 * A real control plane with a real node agent for the agent's tests: the
 * in-process API server, an HttpClient to it, an image store in a temp
 * directory, and an agent running guests under TCG. VMIs are bound to the
 * node the way the scheduler binds them (status.nodeName + Scheduled).
 */
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { NodeAgent } from '../../src/agent/index.js';
import { Cgroups } from '../../src/agent/cgroups.js';
import { ImageStore } from '../../src/agent/images/index.js';
import { HttpClient, resources } from '../../src/client/index.js';
import { silentLogger } from '../../src/log/logger.js';
import type { Logger } from '../../src/log/logger.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';
import { eventually } from '../../src/testing/wait.js';

/** The image a blank disk is imported as: QEMU boots it into SeaBIOS, a real QEMU that never reaches an OS. */
export const blankImage = 'localhost/vireo/blank:latest';

export interface AgentFixture {
  server: TestServer;
  client: HttpClient;
  /** The agent's data directory. */
  dataDir: string;
  images: ImageStore;
  nodeName: string;
  agent: NodeAgent;
  /** Stops the current agent (guests keep running) and starts a new one on the same data directory. */
  restartAgent(): Promise<NodeAgent>;
  close(): Promise<void>;
}

export async function startAgentFixture(options: { logger?: Logger } = {}): Promise<AgentFixture> {
  const server = await startTestServer();
  const root = mkdtempSync(join(tmpdir(), 'vireo-agent-'));
  const dataDir = join(root, 'agent');
  const images = new ImageStore(join(root, 'images'));
  const client = new HttpClient({ server: server.url, token: server.token, caCert: server.pki.caCert, userAgent: 'vireo-agent-test' });
  const nodeName = 'node-a';
  const newAgent = (): NodeAgent =>
    new NodeAgent({ client, nodeName, dataDir, logger: options.logger ?? silentLogger, images, facts: { accel: 'tcg' }, controlPlane: true });
  let agent = newAgent();
  await agent.start();
  // No node IPAM runs here (no controllers): the Node gets a pod range of its own, random so that fixtures side by side never share a subnet.
  await client.patch(resources.nodes, undefined, nodeName, 'merge', { spec: { podCIDR: `10.${200 + randomInt(40)}.${randomInt(256)}.0/24` } });
  const fixture: AgentFixture = {
    server,
    client,
    dataDir,
    images,
    nodeName,
    agent,
    async restartAgent() {
      await agent.stop();
      agent = newAgent();
      fixture.agent = agent;
      await agent.start();
      return agent;
    },
    async close() {
      try {
        await agent.stop({ stopGuests: true });
      } finally {
        // Whatever a failed test left: no QEMU of this test may outlive it, nor its files.
        for (const pid of qemuPidsUnder(dataDir)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        await removeCgroupsOf(dataDir);
        client.close();
        await server.stop();
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
  return fixture;
}

/** Removes the cgroups of the VMI directories under `dataDir` (their QEMUs killed), so no test leaves one on the machine. */
export async function removeCgroupsOf(dataDir: string): Promise<void> {
  const cgroups = await Cgroups.detect();
  let uids: string[] = [];
  try {
    uids = readdirSync(join(dataDir, 'vmis'));
  } catch {
    return;
  }
  for (const uid of uids) await cgroups.remove(uid);
}

/** Imports a blank qcow2 as `blankImage` into the store. */
export async function importBlankImage(images: ImageStore): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-blank-'));
  try {
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'disk.qcow2'), '16M']);
    await images.importFiles(blankImage, { disk: join(dir, 'disk.qcow2') });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A minimal VMI: one containerDisk, 64 MiB, no graphics. */
export function vmiManifest(name: string, options: { image?: string; graceSeconds?: number; spec?: Record<string, unknown>; volumes?: unknown[]; disks?: unknown[] } = {}): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'default' },
    spec: {
      terminationGracePeriodSeconds: options.graceSeconds ?? 0,
      domain: {
        devices: { autoattachGraphicsDevice: false, disks: [{ name: 'root', disk: { bus: 'virtio' } }, ...(options.disks ?? [])] },
        memory: { guest: '64Mi' },
        resources: {},
      },
      volumes: [{ name: 'root', containerDisk: { image: options.image ?? blankImage } }, ...(options.volumes ?? [])],
      ...options.spec,
    },
  };
}

/** Creates the VMI and binds it to `nodeName` as the scheduler does. */
export async function createBound(fixture: AgentFixture, manifest: KObject): Promise<KObject> {
  const created = await fixture.client.create(resources.virtualMachineInstances, manifest);
  // VMIs have no status subresource (as in KubeVirt): the scheduler patches the object.
  return fixture.client.patch(resources.virtualMachineInstances, 'default', created.metadata.name ?? '', 'merge', { status: { phase: 'Scheduled', nodeName: fixture.nodeName } });
}

export function getVmi(fixture: AgentFixture, name: string): Promise<KObject | undefined> {
  return fixture.client.tryGet(resources.virtualMachineInstances, 'default', name);
}

/** Waits until the VMI satisfies `predicate`; returns it. */
export async function waitVmi(fixture: AgentFixture, name: string, predicate: (vmi: KObject) => boolean, what: string, timeoutMs = 30_000): Promise<KObject> {
  return eventually(
    async () => {
      const vmi = await getVmi(fixture, name);
      return vmi !== undefined && predicate(vmi) ? vmi : undefined;
    },
    { what, timeoutMs, intervalMs: 50 },
  );
}

export function phase(vmi: KObject): string | undefined {
  const status = vmi.status;
  return typeof status === 'object' && status !== null && 'phase' in status && typeof status.phase === 'string' ? status.phase : undefined;
}

export interface TestCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export function condition(vmi: KObject, type: string): TestCondition | undefined {
  const status = vmi.status;
  const list = typeof status === 'object' && status !== null && 'conditions' in status && Array.isArray(status.conditions) ? (status.conditions as TestCondition[]) : [];
  return list.find((c) => c.type === type);
}

/** Pids of live processes whose command line mentions `dir` (QEMUs of a test's data directory). */
export function qemuPidsUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (cmdline.includes(dir) && cmdline.includes('qemu-system') && state !== 'Z') pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** The uid directory of a VMI under the agent's data directory. */
export function vmiDir(fixture: AgentFixture, uid: string): string {
  return join(fixture.dataDir, 'vmis', uid);
}

/** Creates a VMI of the blank image bound to the node and waits until it runs; returns it with its directory and QEMU pid. */
export async function runningBlankVmi(fixture: AgentFixture, name: string, options: Parameters<typeof vmiManifest>[1] = {}): Promise<{ vmi: KObject; dir: string; pid: number }> {
  await importBlankImage(fixture.images);
  const created = await createBound(fixture, vmiManifest(name, options));
  const vmi = await waitVmi(fixture, name, (v) => phase(v) === 'Running', `${name} to run`);
  const dir = vmiDir(fixture, created.metadata.uid ?? '');
  const record = JSON.parse(readFileSync(join(dir, 'vmi.json'), 'utf8')) as { pid?: unknown };
  if (typeof record.pid !== 'number') throw new Error(`${dir}/vmi.json has no pid`);
  return { vmi, dir, pid: record.pid };
}
