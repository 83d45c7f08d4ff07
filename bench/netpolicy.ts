/**
 * NetworkPolicy benchmark, on real kernel networking (network namespaces,
 * a bridge, nftables), printed beside baselines measured in the same run:
 *
 * 1. compile + program 1,000 NetworkPolicies (each with its own peers and
 *    ports, over 1,000 peer VMIs of the cluster) into the node's table with
 *    one `nft -f`, vs programming the empty table; target ≤ 1 s;
 * 2. TCP throughput between two sandboxes through the node bridge with
 *    those 1,000 policies loaded (the receiver isolated, the sender
 *    allowed by one of them) vs a plain veth pair between two namespaces;
 *    target ratio ≥ 0.8. A Node sender and sink, bounded in time.
 *
 * Medians of alternating rounds. Everything runs in namespaces it makes
 * and deletes; the host's own network is not touched.
 * Run: npm run bench:netpolicy (VIREO_BENCH_ROUNDS, default 3).
 */
import { performance } from 'node:perf_hooks';
import type { KObject } from '../src/api/object.js';
import { compilePolicies, PolicyApplier } from '../src/net/policy/index.js';
import type { PolicyEndpoint, PolicyInput } from '../src/net/policy/index.js';
import { NetnsLab } from '../src/testing/netns-lab.js';

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
    ips: [`10.${200 + Math.floor(i / 250)}.${i % 250}.${1 + (i % 200)}`],
    hostInterface: '',
    local: false,
  }));
}

async function main(): Promise<void> {
  const lab = await NetnsLab.create('bn');
  try {
    const server = await lab.addSandbox();
    const client = await lab.addSandbox();
    const [pairA, pairB] = await lab.addDirectPair();
    await server.sink(5201);
    await pairB.sink(5201);
    const local = (sandbox: typeof server, name: string, labels: Record<string, string>): PolicyEndpoint => ({ namespace: 'bench', name, labels, ips: [sandbox.ipv4, sandbox.ipv6], hostInterface: sandbox.hostInterface, local: true });
    const endpoints = [local(server, 'server', { app: 'server' }), local(client, 'client', { role: 'client' }), ...peers()];
    const loaded: PolicyInput = { networkPolicies: policies(), calicoPolicies: [], networkSets: [], namespaces: [{ name: 'bench', labels: {} }], endpoints };
    const empty: PolicyInput = { ...loaded, networkPolicies: [] };
    const applier = new PolicyApplier({ tableName: 'vireo_bench', target: { netns: lab.node } });

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

    // The table stays loaded for the throughput rounds; check it really filters.
    if ((await client.connect(server.ipv4, 1000 + 5)) !== 'timeout' && (await client.connect(server.ipv4, 1000 + 5)) !== 'ECONNREFUSED') throw new Error('the policies are not in force');
    const throughBridge: number[] = [];
    const bridgeOnly: number[] = [];
    const direct: number[] = [];
    // Alternating within each round, so the machine's other load falls on all three alike.
    for (let round = 0; round < rounds; round++) {
      await applier.apply(loaded);
      direct.push(await pairA.send(pairB.ipv4, 5201, sendMs));
      throughBridge.push(await client.send(server.ipv4, 5201, sendMs));
      // Where the cost is: the same bridge with no table at all.
      await applier.remove();
      bridgeOnly.push(await client.send(server.ipv4, 5201, sendMs));
    }

    const compileTimes: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const start = performance.now();
      compilePolicies(loaded, { tableName: 'vireo_bench' });
      compileTimes.push(performance.now() - start);
    }
    const programMs = median(programTimes);
    const emptyMs = median(emptyTimes);
    const bridged = median(throughBridge);
    const plain = median(direct);
    const bare = median(bridgeOnly);
    console.log(`NetworkPolicy benchmark (${rounds} rounds, medians; ${policyCount} policies → ${rules} rules)`);
    console.log(`compile + program ${policyCount} policies   ${programMs.toFixed(0).padStart(6)} ms   empty table ${emptyMs.toFixed(0).padStart(5)} ms   ${(programMs / emptyMs).toFixed(1)}x the empty table   target ≤ 1000 ms: ${programMs <= 1000 ? 'met' : 'MISSED'} (compile alone ${median(compileTimes).toFixed(0)} ms)`);
    console.log(
      `TCP through bridge + ${policyCount} policies  ${(bridged / 1e6).toFixed(0).padStart(6)} MB/s   plain veth pair ${(plain / 1e6).toFixed(0).padStart(5)} MB/s   ratio ${(bridged / plain).toFixed(2)}   target ≥ 0.8: ${bridged / plain >= 0.8 ? 'met' : 'MISSED'}`,
    );
    console.log(`TCP through the bridge, no table       ${(bare / 1e6).toFixed(0).padStart(6)} MB/s   plain veth pair ${(plain / 1e6).toFixed(0).padStart(5)} MB/s   ratio ${(bare / plain).toFixed(2)}   (the bridge and br_netfilter alone)`);
  } finally {
    await lab.destroy();
  }
}

await main();
