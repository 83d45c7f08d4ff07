/**
 * Cross-node pod network benchmark: TCP throughput between two VMI
 * sandboxes on two lab hosts (src/testing/hosts-lab.ts: network
 * namespaces on one bridge), each made by the pod network as the agent
 * makes it (`PodNetwork`: node bridge and table, a sandbox with its
 * masquerade table; no QEMU, the benchmark's processes run in the
 * sandboxes on their pod addresses) and joined by the routes the agent
 * keeps (`syncPodRoutes`: one route per other node's pod range via its
 * address), against a plain veth pair between two namespaces, side by
 * side in alternating rounds; prints the medians and their ratio.
 *
 * The pod network of a host must be made inside that host's namespace, so
 * this script runs itself once per host under `nsenter` (`host` mode): it
 * makes the node's network, one sandbox and the route to the other host's
 * range, prints the sandbox, and removes it all when its stdin closes.
 * Run: npm run bench:crossnet (VIREO_BENCH_ROUNDS, default 3).
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../src/log/logger.js';
import { PodNetwork } from '../src/net/pod/index.js';
import type { SandboxSpec } from '../src/net/pod/index.js';
import { clusterPodRanges, desiredPodRoutes, removePodRoutes, syncPodRoutes } from '../src/net/pod/node-routes.js';
import type { RouteNode } from '../src/net/pod/node-routes.js';
import { HostsLab } from '../src/testing/hosts-lab.js';
import type { LabHost } from '../src/testing/hosts-lab.js';
import { NetnsLab, Sandbox } from '../src/testing/netns-lab.js';

const rounds = Number(process.env.VIREO_BENCH_ROUNDS ?? '3');
const sendMs = 2000;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** What `host` mode is told: its node, and every node (itself included) as the agent would see them. */
interface HostPlan {
  dataDir: string;
  self: string;
  nodes: RouteNode[];
}

/** What `host` mode prints once its sandbox is up. */
interface HostReady {
  netns: string;
  hostVeth: string;
  ipv4: string;
}

/** `host` mode: inside a lab host's namespace, the node's pod network, one sandbox and the routes; all removed when stdin closes. */
async function runHost(plan: HostPlan): Promise<void> {
  const signal = new AbortController().signal;
  const own = plan.nodes.find((n) => n.name === plan.self)?.podCidrs ?? [];
  const network = new PodNetwork({ dataDir: plan.dataDir, podCidrs: () => Promise.resolve([...own]), logger: silentLogger });
  // Only port 80 goes on to the (absent) guest: the sink on 5201 is the sandbox's own.
  const spec: SandboxSpec = { binding: 'masquerade', mac: '02:00:00:be:0c:01', hostname: plan.self, dnsServers: [], ports: [{ protocol: 'tcp', port: 80 }] };
  try {
    const state = await network.setUp(`bench-${plan.self}`, spec, signal);
    const { routes, skipped } = desiredPodRoutes(plan.nodes, plan.self);
    const result = await syncPodRoutes(routes, signal);
    const notRouted = [...skipped, ...result.skipped];
    if (notRouted.length > 0) throw new Error(`routes not made: ${JSON.stringify(notRouted)}`);
    await network.setClusterPodRanges(clusterPodRanges(plan.nodes), signal);
    const ready: HostReady = { netns: state.netns, hostVeth: state.hostVeth, ipv4: state.podIps.find((ip) => !ip.includes(':')) ?? '' };
    process.stdout.write(`${JSON.stringify(ready)}\n`);
    await new Promise<void>((resolve) => { process.stdin.on('end', resolve).resume(); });
  } finally {
    await network.sweep(new Set(), signal).catch((err: unknown) => { console.error('removing the sandbox failed:', err); });
    await network.removeNode(signal).catch((err: unknown) => { console.error('removing the node bridge failed:', err); });
    await removePodRoutes(signal).catch((err: unknown) => { console.error('removing the routes failed:', err); });
  }
}

/** Starts `host` mode in `host`; resolves with its sandbox once it is up. */
function startHost(lab: HostsLab, host: LabHost, plan: HostPlan): Promise<{ child: ChildProcessWithoutNullStreams; ready: HostReady }> {
  const child = spawn(lab.command(host)[0] ?? 'nsenter', [...lab.command(host).slice(1), process.execPath, fileURLToPath(import.meta.url), 'host', JSON.stringify(plan)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (line) => { resolve({ child, ready: JSON.parse(line) as HostReady }); });
    child.once('exit', (code) => { reject(new Error(`the ${host.name} half exited (${String(code)}) before its sandbox was up: ${stderr.trim()}`)); });
  });
}

/** Closes a host half's stdin and waits for it to remove what it made. */
function stopHost(child: ChildProcessWithoutNullStreams): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve(); }));
  child.stdin.end();
  return exited;
}

async function main(): Promise<void> {
  const lab = await HostsLab.create(2);
  const pairs = await NetnsLab.create('bx');
  const root = mkdtempSync(join(tmpdir(), 'vireo-bench-crossnet-'));
  const halves: ChildProcessWithoutNullStreams[] = [];
  const processes: Sandbox[] = [];
  try {
    const [hostA, hostB] = lab.hosts;
    if (hostA === undefined || hostB === undefined) throw new Error('the lab has two hosts');
    const base = `10.${200 + randomInt(40)}.${randomInt(128) * 2}`;
    const nodes: RouteNode[] = [
      { name: 'a', podCidrs: [`${base}.0/24`], addresses: [hostA.address] },
      { name: 'b', podCidrs: [`${base.replace(/\.(\d+)$/, (_, n: string) => `.${Number(n) + 1}`)}.0/24`], addresses: [hostB.address] },
    ];
    const a = await startHost(lab, hostA, { dataDir: join(root, 'a'), self: 'a', nodes });
    halves.push(a.child);
    const b = await startHost(lab, hostB, { dataDir: join(root, 'b'), self: 'b', nodes });
    halves.push(b.child);
    const sender = Sandbox.spawnIn(a.ready.netns, { hostInterface: a.ready.hostVeth, ipv4: a.ready.ipv4, ipv6: '' });
    const receiver = Sandbox.spawnIn(b.ready.netns, { hostInterface: b.ready.hostVeth, ipv4: b.ready.ipv4, ipv6: '' });
    processes.push(sender, receiver);
    await receiver.sink(5201);
    await receiver.listen(5202);
    const [pairA, pairB] = await pairs.addDirectPair();
    await pairB.sink(5201);
    // An echo through the route first (the first connection also waits for two ARP resolutions on a loaded machine: a few tries).
    let probe = '';
    for (let attempt = 0; attempt < 5 && probe !== 'connected'; attempt++) probe = await sender.connect(receiver.ipv4, 5202, 3000);
    if (probe !== 'connected') {
      const routes = await lab.exec(hostA, 'ip', 'route');
      throw new Error(`the sandbox on host a (${sender.ipv4}) cannot reach the one on host b (${receiver.ipv4}) through the route: ${probe}; host a's routes:\n${routes}`);
    }

    const across: number[] = [];
    const direct: number[] = [];
    // Alternating within each round, so the machine's other load falls on both alike.
    for (let round = 0; round < rounds; round++) {
      direct.push(await pairA.send(pairB.ipv4, 5201, sendMs));
      across.push(await sender.send(receiver.ipv4, 5201, sendMs));
    }
    const routed = median(across);
    const plain = median(direct);
    console.log(`Cross-node pod network benchmark (${rounds} rounds of ${sendMs} ms, medians)`);
    console.log(`TCP sandbox on host a → sandbox on host b  ${(routed / 1e6).toFixed(0).padStart(6)} MB/s   plain veth pair ${(plain / 1e6).toFixed(0).padStart(5)} MB/s   ratio ${(routed / plain).toFixed(2)}`);
    console.log('  (path: sandbox veth → node bridge → forward + route → host veth → lab bridge → host veth → forward → node bridge → sandbox veth; nftables: both nodes\' tables and the sandboxes\' NAT)');
  } finally {
    for (const sandbox of processes) sandbox.stop();
    for (const child of halves) await stopHost(child);
    await pairs.destroy();
    await lab.destroy();
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'host') await runHost(JSON.parse(process.argv[3] ?? '{}') as HostPlan);
else await main();
