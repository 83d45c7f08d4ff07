/**
 * A cluster of lab hosts for the many-host tests (src/testing/hosts-lab.ts):
 * a real `vireo server` process in host-0 (its own agent makes host-0 a
 * node too) and real `vireo agent` processes in host-1…, each joined with a
 * token from `vireo token create`, each with its own data directory and
 * address. The test process reaches them over the lab bridge; `close()`
 * stops the agents (with their guests), the server, kills whatever is left
 * in the hosts, removes the guests' cgroups, their sandboxes and the lab.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpClient, resources } from '../../src/client/index.js';
import { networkNames } from '../../src/net/pod/names.js';
import { HostsLab } from '../../src/testing/hosts-lab.js';
import type { LabHost } from '../../src/testing/hosts-lab.js';
import { startAgentProcess, startServerProcess } from '../../src/testing/process.js';
import type { AgentProcess, ServerProcess } from '../../src/testing/process.js';
import { eventually } from '../../src/testing/wait.js';
import { vireo } from '../subresources/support.js';
import { qemuPidsUnder, removeCgroupsOf } from '../agent/support.js';

/** Ports are the same on every host: each has its own namespace. */
export const serverPort = 6443;
export const agentPort = 10250;

export interface LabAgent {
  host: LabHost;
  dataDir: string;
  process: AgentProcess;
}

export interface LabCluster {
  lab: HostsLab;
  root: string;
  server: ServerProcess;
  /** The server's own node (this machine's hostname): it runs on host-0. */
  serverNode: string;
  client: HttpClient;
  /** { kubeconfig } for kubectl and vireo. */
  kc: { kubeconfig: string };
  /** The joined agents, host-1… in order; their node names are their hosts' names. */
  agents: LabAgent[];
  /** Starts (again) the agent of `host` on its data directory (it keeps its credential). */
  startAgent(host: LabHost): Promise<LabAgent>;
  close(): Promise<void>;
}

/**
 * Kills what still runs in the pod network sandboxes of the agent on
 * `agentDir` (their dnsmasq) and removes the sandboxes' namespaces.
 */
function removeSandboxesOf(agentDir: string): void {
  const prefix = networkNames(agentDir).netnsPrefix;
  let namespaces: string[] = [];
  try {
    namespaces = readdirSync('/run/netns').filter((name) => name.startsWith(prefix));
  } catch {
    return;
  }
  for (const netns of namespaces) {
    const pids = execFileSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' }).split('\n').filter((line) => /^\d+$/.test(line.trim()));
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    execFileSync('ip', ['netns', 'del', netns]);
  }
}

/** Starts a cluster of `hosts` lab hosts (at least 1: the server's); `serverArgs` and `agentArgs` are added to their command lines. */
export async function startLabCluster(options: { hosts: number; serverArgs?: string[]; agentArgs?: string[] }): Promise<LabCluster> {
  const lab = await HostsLab.create(options.hosts);
  const root = mkdtempSync(join(tmpdir(), 'vlab-'));
  const serverHost = lab.hosts[0];
  if (serverHost === undefined) throw new Error('a lab cluster needs a host for its server');
  let server: ServerProcess | undefined;
  let client: HttpClient | undefined;
  const agents: LabAgent[] = [];
  const close = async (): Promise<void> => {
    try {
      for (const agent of agents) await agent.process.stop().catch(() => undefined);
      server?.child.kill('SIGTERM');
      await server?.exited;
    } finally {
      client?.close();
      // The hosts die whatever the stops left (QEMUs of a killed agent, dnsmasq); then their guests' cgroups can go.
      await lab.destroy();
      // The server's own agent keeps its guests under the server's data directory, in `agent/` like the others.
      const agentDirs = [join(root, 'server', 'agent'), ...lab.hosts.map((h) => join(root, h.name, 'agent'))];
      for (const dir of agentDirs) {
        for (const pid of qemuPidsUnder(dir)) process.kill(pid, 'SIGKILL');
        await removeCgroupsOf(dir);
      }
      // The guests' sandboxes are namespaces of their own, not their host's: what a stopped or killed agent left of them goes too.
      for (const agentDir of agentDirs) removeSandboxesOf(agentDir);
      rmSync(root, { recursive: true, force: true });
    }
  };
  try {
    server = await startServerProcess({ dataDir: join(root, 'server'), port: serverPort, timeoutMs: 90_000, place: { host: serverHost.address, prefix: lab.command(serverHost) }, ...(options.serverArgs === undefined ? {} : { args: options.serverArgs }) });
    client = new HttpClient({ server: server.url, token: server.token, caCert: server.caCert, userAgent: 'vireo-lab-test' });
    const kc = { kubeconfig: server.kubeconfig };
    const created = await vireo(['token', 'create', '--description', 'lab hosts'], kc);
    if (created.code !== 0) throw new Error(`vireo token create failed: ${created.stderr}`);
    const token = created.stdout.split('\n')[0] ?? '';
    const serverUrl = server.url;
    const startAgent = async (host: LabHost): Promise<LabAgent> => {
      const dataDir = join(root, host.name);
      const agentProcess = await startAgentProcess({ join: { server: serverUrl, token }, dataDir, nodeName: host.name, port: agentPort, timeoutMs: 90_000, place: { host: host.address, prefix: lab.command(host) }, ...(options.agentArgs === undefined ? {} : { args: options.agentArgs }) });
      const agent = { host, dataDir, process: agentProcess };
      const known = agents.findIndex((a) => a.host === host);
      if (known === -1) agents.push(agent);
      else agents[known] = agent;
      return agent;
    };
    for (const host of lab.hosts.slice(1)) await startAgent(host);
    const serverClient = client;
    const nodes = await eventually(
      async () => {
        const list = await serverClient.list(resources.nodes);
        return list.items.length === lab.hosts.length ? list.items : undefined;
      },
      { what: `${lab.hosts.length} Nodes`, timeoutMs: 60_000 },
    );
    const serverNode = nodes.map((n) => n.metadata.name ?? '').find((n) => !lab.hosts.some((h) => h.name === n)) ?? '';
    return { lab, root, server, serverNode, client, kc, agents, startAgent, close };
  } catch (err) {
    await close();
    throw err;
  }
}
