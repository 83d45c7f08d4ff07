/**
 * Shared setup for the subresource tests: a real in-process server, a node
 * agent backed by real processes (src/testing/agent-handle.ts) behind a
 * second front door that knows it, and helpers that create VMs and VMIs in
 * the states the tests need (no VM controller runs in the test server, so
 * the tests set VMI status themselves, as the agent would).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { KObject } from '../../src/api/object.js';
import { recordAt } from '../../src/api/kinds/read.js';
import type { ResourceDef } from '../../src/api/resource.js';
import { LocalAgentDirectory } from '../../src/agent/handle.js';
import { HttpClient } from '../../src/client/index.js';
import { EchoAgent, serveWithAgents } from '../../src/testing/agent-handle.js';
import type { AgentFrontDoor } from '../../src/testing/agent-handle.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';

export const nodeName = 'node-a';
export const subresources = '/apis/subresources.kubevirt.io/v1/namespaces';

export interface Fixture {
  test: TestServer;
  agent: EchoAgent;
  /** The server that has the agent. */
  door: AgentFrontDoor;
  /** A client of `door`. */
  client: HttpClient;
  stop(): Promise<void>;
}

export async function startFixture(): Promise<Fixture> {
  const test = await startTestServer();
  const agent = new EchoAgent(nodeName);
  const agents = new LocalAgentDirectory();
  agents.register(agent);
  const door = await serveWithAgents(test, agents);
  const client = new HttpClient({ server: door.url, token: test.token, caCert: test.pki.caCert });
  return {
    test,
    agent,
    door,
    client,
    async stop() {
      client.close();
      await door.stop();
      await agent.stop();
      await test.stop();
    },
  };
}

function def(test: TestServer, plural: string): ResourceDef {
  const found = test.plane.registry.lookup('kubevirt.io', 'v1', plural);
  if (found === undefined) throw new Error(`kubevirt.io/v1 ${plural} is not registered`);
  return found;
}

const domain = { devices: {}, memory: { guest: '64Mi' } };

/** Creates a VM with `spec` fields (runStrategy or running) and returns it. */
export async function createVm(test: TestServer, name: string, spec: Record<string, unknown>, namespace = 'default'): Promise<KObject> {
  const vm = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name, namespace }, spec: { ...spec, template: { spec: { domain } } } };
  return (await test.plane.server.objects.create(def(test, 'virtualmachines'), namespace, vm)).object;
}

export function getVm(test: TestServer, name: string, namespace = 'default'): Promise<KObject> {
  return test.plane.server.objects.get(def(test, 'virtualmachines'), namespace, name);
}

export function getVmi(test: TestServer, name: string, namespace = 'default'): Promise<KObject> {
  return test.plane.server.objects.get(def(test, 'virtualmachineinstances'), namespace, name);
}

/** Creates a VMI and gives it `status` (phase, nodeName, conditions), as the controllers and the agent would. */
export async function createVmi(test: TestServer, name: string, status: Record<string, unknown>, options: { namespace?: string; spec?: Record<string, unknown> } = {}): Promise<KObject> {
  const namespace = options.namespace ?? 'default';
  const vmiDef = def(test, 'virtualmachineinstances');
  const vmi = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name, namespace }, spec: { domain, ...options.spec } };
  const created = (await test.plane.server.objects.create(vmiDef, namespace, vmi)).object;
  return (await test.plane.server.objects.replace(vmiDef, created, { ...created, status }, { subresource: 'status' })).object;
}

/** Replaces a VMI's status, as the node agent does when the guest's state changes. */
export async function setVmiStatus(test: TestServer, name: string, status: Record<string, unknown>, namespace = 'default'): Promise<void> {
  const vmiDef = def(test, 'virtualmachineinstances');
  const current = await test.plane.server.objects.get(vmiDef, namespace, name);
  await test.plane.server.objects.replace(vmiDef, current, { ...current, status }, { subresource: 'status' });
}

/** A running VMI on the fixture's node, with a guest process behind it. */
export async function runningVmi(fixture: Fixture, name: string, namespace = 'default'): Promise<KObject> {
  await fixture.agent.addGuest(namespace, name);
  return createVmi(fixture.test, name, { phase: 'Running', nodeName }, { namespace });
}

export function specOf(obj: KObject): Record<string, unknown> {
  return recordAt(obj, 'spec') ?? {};
}

export function statusOf(obj: KObject): Record<string, unknown> {
  return recordAt(obj, 'status') ?? {};
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Runs the real `vireo` CLI (a child process) with `stdin` piped in. */
export function vireo(args: string[], options: { kubeconfig: string; stdin?: string; timeoutMs?: number }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', KUBECONFIG: options.kubeconfig },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vireo ${args.join(' ')} did not finish within ${options.timeoutMs ?? 20_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 20_000);
    // 'close', not 'exit': the output pipes are drained by then.
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(options.stdin ?? '');
  });
}
