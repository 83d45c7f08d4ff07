/**
 * NetworkPolicy benchmark, on the pod network's real datapath: two VMI
 * sandboxes made through `PodNetwork` (src/net/pod, what the node agent
 * uses: the node bridge and its nftables table, a veth per sandbox, the
 * sandbox's masquerade table and dnsmasq; no QEMU, the benchmark's
 * processes run in the sandboxes' namespaces on their pod addresses), and
 * the node's policy table programmed through the real compiler and
 * `PolicyApplier` in the host namespace, as the agent does. Printed beside
 * baselines measured in the same run:
 *
 * 1. compile + program 1,000 NetworkPolicies (each with its own peers and
 *    ports, over 1,000 peer VMIs of the cluster) with one `nft -f`, vs
 *    programming the empty table; target ≤ 1 s;
 * 2. TCP throughput between the two sandboxes with those 1,000 policies
 *    loaded (the receiver isolated, the sender allowed by one of them) vs
 *    a plain veth pair between two namespaces; target ratio ≥ 0.8; and the
 *    same sandboxes with no policy table, to show where the cost is.
 *    A Node sender and sink, bounded in time.
 *
 * Medians of alternating rounds. The pod network gets a random /24 of
 * 10.200.0.0–10.239.255.0 (only this host routes it, to its own bridge)
 * and names derived from a temporary data directory; the sandboxes, the
 * node bridge and both tables are removed at the end.
 * Run: npm run bench:netpolicy (VIREO_BENCH_ROUNDS, default 3).
 */
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { KObject } from '../src/api/object.js';
import { silentLogger } from '../src/log/logger.js';
import { PodNetwork } from '../src/net/pod/index.js';
import type { SandboxSpec, SandboxState } from '../src/net/pod/index.js';
import { compilePolicies, PolicyApplier } from '../src/net/policy/index.js';
import type { PolicyEndpoint, PolicyInput } from '../src/net/policy/index.js';
import { NetnsLab, Sandbox } from '../src/testing/netns-lab.js';

const rounds = Number(process.env.VIREO_BENCH_ROUNDS ?? '3');
const policyCount = 1000;
const sendMs = 2000;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function policies(): KObject[] {
  return Array.from({ length: policyCount }, (_, i) => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: `p${i}`, namespace: 'bench' },
    spec: {
      // All of them select the receiver, so all of them are in this node's table.
      podSelector: { matchLabels: { app: 'server' } },
      ingress: [
        {
          from: [{ podSelector: { matchLabels: { role: i === 0 ? 'client' : `r${i}` } } }, { ipBlock: { cidr: `172.${16 + (i % 16)}.${i % 256}.0/24`, except: [`172.${16 + (i % 16)}.${i % 256}.128/25`] } }],
          ports: i === 0 ? [{ port: 5201 }] : [{ port: 1000 + i }, { protocol: 'UDP', port: 2000, endPort: 2000 + (i % 50) }],
        },
      ],
    },
  }));
}

function peers(): PolicyEndpoint[] {
  return Array.from({ length: policyCount }, (_, i) => ({
    namespace: 'bench',
    name: `peer${i}`,
    labels: { role: `r${i}`, app: `svc-${i % 100}` },
    ips: [`10.${240 + Math.floor(i / 250)}.${i % 250}.${1 + (i % 200)}`],
    hostInterface: '',
    local: false,
  }));
}

/** A sandbox as the agent makes it for a masquerade VMI; only port 80 goes on to the (absent) guest, so the sink on 5201 is the sandbox's own. */
function sandboxSpec(name: string, index: number): SandboxSpec {
  return { binding: 'masquerade', mac: `02:00:00:be:0${index}:01`, hostname: name, dnsServers: [], ports: [{ protocol: 'tcp', port: 80 }] };
}

function processIn(state: SandboxState): Sandbox {
  const ipv4 = state.podIps.find((ip) => !ip.includes(':')) ?? '';
  return Sandbox.spawnIn(state.netns, { hostInterface: state.hostVeth, ipv4, ipv6: state.podIps.find((ip) => ip.includes(':')) ?? '' });
}

async function main(): Promise<void> {
  const signal = new AbortController().signal;
  const dataDir = mkdtempSync(join(tmpdir(), 'vireo-bench-netpolicy-'));
  const podCidr = `10.${200 + randomInt(40)}.${randomInt(256)}.0/24`;
  const network = new PodNetwork({ dataDir, podCidrs: () => Promise.resolve([podCidr]), logger: silentLogger });
  const applier = new PolicyApplier({ tableName: network.names.policyTable });
  const lab = await NetnsLab.create('bn');
  const processes: Sandbox[] = [];
  try {
    const server = processIn(await network.setUp('bench-server', sandboxSpec('server', 1), signal));
    const client = processIn(await network.setUp('bench-client', sandboxSpec('client', 2), signal));
    processes.push(server, client);
    const [pairA, pairB] = await lab.addDirectPair();
    await server.sink(5201);
    await pairB.sink(5201);
    const local = (sandbox: Sandbox, name: string, labels: Record<string, string>): PolicyEndpoint => ({ namespace: 'bench', name, labels, ips: [sandbox.ipv4], hostInterface: sandbox.hostInterface, local: true });
    const endpoints = [local(server, 'server', { app: 'server' }), local(client, 'client', { role: 'client' }), ...peers()];
    const loaded: PolicyInput = { networkPolicies: policies(), calicoPolicies: [], networkSets: [], namespaces: [{ name: 'bench', labels: {} }], endpoints };
    const empty: PolicyInput = { ...loaded, networkPolicies: [] };

    const programTimes: number[] = [];
    const emptyTimes: number[] = [];
    let rules = 0;
    for (let round = 0; round < rounds; round++) {
      let start = performance.now();
      await applier.apply(empty);
      emptyTimes.push(performance.now() - start);
      start = performance.now();
      rules = (await applier.apply(loaded)).rules;
      programTimes.push(performance.now() - start);
    }

    // The table stays loaded for the throughput rounds; check it really filters: port 1005 is only allowed from role r5 (refused if it got through).
    const probe = await client.connect(server.ipv4, 1005);
    if (probe !== 'timeout') throw new Error(`the policies are not in force: a connection to a port no policy allows the client ended in ${probe}, not a drop`);
    const throughPolicies: number[] = [];
    const noTable: number[] = [];
    const direct: number[] = [];
    // Alternating within each round, so the machine's other load falls on all three alike.
    for (let round = 0; round < rounds; round++) {
      await applier.apply(loaded);
      direct.push(await pairA.send(pairB.ipv4, 5201, sendMs));
      throughPolicies.push(await client.send(server.ipv4, 5201, sendMs));
      // Where the cost is: the same sandboxes and bridge with no policy table at all.
      await applier.remove();
      noTable.push(await client.send(server.ipv4, 5201, sendMs));
    }

    const compileTimes: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const start = performance.now();
      compilePolicies(loaded, { tableName: network.names.policyTable });
      compileTimes.push(performance.now() - start);
    }
    const programMs = median(programTimes);
    const emptyMs = median(emptyTimes);
    const policed = median(throughPolicies);
    const plain = median(direct);
    const bare = median(noTable);
    console.log(`NetworkPolicy benchmark on PodNetwork sandboxes (${rounds} rounds, medians; ${policyCount} policies → ${rules} rules)`);
    console.log(`compile + program ${policyCount} policies    ${programMs.toFixed(0).padStart(6)} ms   empty table ${emptyMs.toFixed(0).padStart(5)} ms   ${(programMs / emptyMs).toFixed(1)}x the empty table   target ≤ 1000 ms: ${programMs <= 1000 ? 'met' : 'MISSED'} (compile alone ${median(compileTimes).toFixed(0)} ms)`);
    console.log(`TCP sandbox → sandbox, ${policyCount} policies  ${(policed / 1e6).toFixed(0).padStart(6)} MB/s   plain veth pair ${(plain / 1e6).toFixed(0).padStart(5)} MB/s   ratio ${(policed / plain).toFixed(2)}   target ≥ 0.8: ${policed / plain >= 0.8 ? 'met' : 'MISSED'}`);
    console.log(`TCP sandbox → sandbox, no policy table ${(bare / 1e6).toFixed(0).padStart(6)} MB/s   plain veth pair ${(plain / 1e6).toFixed(0).padStart(5)} MB/s   ratio ${(bare / plain).toFixed(2)}   (node bridge, br_netfilter, the pod network's tables)`);
  } finally {
    for (const sandbox of processes) sandbox.stop();
    await applier.remove().catch(() => undefined);
    await network.sweep(new Set(), signal).catch((err: unknown) => { console.error('removing the sandboxes failed:', err); });
    await network.removeNode(signal).catch((err: unknown) => { console.error('removing the node bridge failed:', err); });
    await lab.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
