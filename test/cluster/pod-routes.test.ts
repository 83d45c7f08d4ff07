/**
 * The routes between nodes' pod ranges on three lab hosts, without guests:
 * every host gets one route (`proto 211`) per other node's pod range via
 * that node's address (IPv4) or published link-local address (IPv6); the
 * routes follow a Node's podCIDRs and address changing and the Node going;
 * a Node off the shared link gets none; an agent with no guests that
 * stops takes its routes with it, and a restarted one removes a stale
 * route of its protocol while leaving other routes alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { podCidrsOf } from '../../src/controllers/nodeipam/controller.js';
import { linkLocalAnnotation, parseRouteList, podRouteProtocol } from '../../src/net/pod/node-routes.js';
import type { LabHost } from '../../src/testing/hosts-lab.js';
import { eventually } from '../../src/testing/wait.js';
import { labSkip } from './requirements.js';
import { startLabCluster } from './support.js';
import type { LabCluster } from './support.js';


/** `destination via nexthop` of every route of Vireo's protocol on `host`, sorted. */
async function routesOn(cluster: LabCluster, host: LabHost): Promise<string[]> {
  const out: string[] = [];
  for (const family of [4, 6] as const) {
    const text = await cluster.lab.exec(host, 'ip', '-j', `-${family}`, 'route', 'show', 'proto', String(podRouteProtocol));
    out.push(...parseRouteList(text, family).map((r) => `${r.destination} via ${r.via ?? '?'}`));
  }
  return out.sort();
}

function internalIp(node: KObject): string {
  return stringAt(recordsAt(node, 'status', 'addresses').find((a) => a.type === 'InternalIP'), 'address') ?? '';
}

/** The routes `self` should have, from the Nodes as the API has them. */
function expectedRoutes(nodes: readonly KObject[], self: string): string[] {
  return nodes
    .filter((n) => n.metadata.name !== self)
    .flatMap((n) => podCidrsOf(n).map((cidr) => `${cidr} via ${cidr.includes(':') ? (n.metadata.annotations?.[linkLocalAnnotation] ?? 'no link-local published') : internalIp(n)}`))
    .sort();
}

test('routes between the pod ranges of three lab hosts follow the Nodes, and go with the agent', { skip: labSkip, timeout: 400_000 }, async (t) => {
  const cluster = await startLabCluster({ hosts: 3 });
  t.after(() => cluster.close());
  const { lab, client } = cluster;
  const [host0, host1, host2] = lab.hosts;
  assert.ok(host0 !== undefined && host1 !== undefined && host2 !== undefined);
  const nodeOf = new Map<LabHost, string>([[host0, cluster.serverNode], [host1, host1.name], [host2, host2.name]]);
  const hostsWithAgents = [host0, host1, host2];

  /** Waits until every host's routes are what the Nodes say (for `extra`, routes to a Node no host runs). */
  const routesFollowNodes = async (what: string): Promise<void> => {
    for (const host of hostsWithAgents) {
      let last: string[] = [];
      let wanted: string[] = [];
      await eventually(
        async () => {
          const nodes = (await client.list(resources.nodes)).items;
          wanted = expectedRoutes(nodes, nodeOf.get(host) ?? '');
          last = await routesOn(cluster, host);
          return JSON.stringify(last) === JSON.stringify(wanted) ? true : undefined;
        },
        { what: `${what} on ${host.name}`, timeoutMs: 60_000 },
      ).catch((err: unknown) => {
        throw new Error(`${err instanceof Error ? err.message : String(err)}: has ${JSON.stringify(last)}, wants ${JSON.stringify(wanted)}`);
      });
    }
  };

  await t.test('every host routes every other node\'s IPv4 and IPv6 pod range via its address', async () => {
    const nodes = (await client.list(resources.nodes)).items;
    assert.equal(nodes.length, 3);
    for (const node of nodes) assert.equal(podCidrsOf(node).length, 2, `${node.metadata.name ?? ''} has an IPv4 and an IPv6 pod range`);
    // The lab hosts have IPv4 addresses only: each node publishes its link-local address for the IPv6 routes.
    await eventually(async () => (await client.list(resources.nodes)).items.every((n) => /^fe80:/.test(n.metadata.annotations?.[linkLocalAnnotation] ?? '')) || undefined, { what: 'every Node\'s link-local address', timeoutMs: 60_000 });
    await routesFollowNodes('a route per other node\'s pod range');
    assert.equal((await routesOn(cluster, host1)).length, 4, 'two other nodes, two ranges each');
  });

  await t.test('a Node\'s new pod range and address move its route; a deleted Node\'s route goes', async () => {
    const subnet = host1.address.split('.').slice(0, 3).join('.');
    await client.create(resources.nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'ghost' }, spec: { podCIDR: '10.244.200.0/24', podCIDRs: ['10.244.200.0/24'] } });
    await client.patch(resources.nodes, undefined, 'ghost', 'merge', { status: { addresses: [{ type: 'InternalIP', address: `${subnet}.99` }] } }, { subresource: 'status' });
    await routesFollowNodes('the route to a new Node');
    assert.ok((await routesOn(cluster, host2)).includes(`10.244.200.0/24 via ${subnet}.99`));

    await client.patch(resources.nodes, undefined, 'ghost', 'merge', { spec: { podCIDR: '10.244.201.0/24', podCIDRs: ['10.244.201.0/24'] } });
    await client.patch(resources.nodes, undefined, 'ghost', 'merge', { status: { addresses: [{ type: 'InternalIP', address: `${subnet}.98` }] } }, { subresource: 'status' });
    await routesFollowNodes('the route to a Node whose range and address changed');
    const routes = await routesOn(cluster, host2);
    assert.ok(routes.includes(`10.244.201.0/24 via ${subnet}.98`), routes.join('\n'));
    assert.ok(!routes.some((r) => r.startsWith('10.244.200.0/24')), routes.join('\n'));

    await client.delete(resources.nodes, undefined, 'ghost');
    await routesFollowNodes('no route to a deleted Node');
    assert.ok(!(await routesOn(cluster, host2)).some((r) => r.startsWith('10.244.201.0/24')));
  });

  await t.test('a Node whose address is off the shared link gets no route', async () => {
    await client.create(resources.nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'far' }, spec: { podCIDR: '10.244.202.0/24', podCIDRs: ['10.244.202.0/24'] } });
    // No host has a route to 192.0.2.0/24 (TEST-NET-1) in its namespace: the lab hosts have no default route.
    await client.patch(resources.nodes, undefined, 'far', 'merge', { status: { addresses: [{ type: 'InternalIP', address: '192.0.2.77' }] } }, { subresource: 'status' });
    // A Node after it, which does get its route: the sync went past the far one.
    await client.create(resources.nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'near' }, spec: { podCIDR: '10.244.203.0/24', podCIDRs: ['10.244.203.0/24'] } });
    await client.patch(resources.nodes, undefined, 'near', 'merge', { status: { addresses: [{ type: 'InternalIP', address: `${host1.address.split('.').slice(0, 3).join('.')}.97` }] } }, { subresource: 'status' });
    await eventually(async () => (await routesOn(cluster, host1)).some((r) => r.startsWith('10.244.203.0/24')) || undefined, { what: 'the route to the near Node', timeoutMs: 60_000 });
    assert.ok(!(await routesOn(cluster, host1)).some((r) => r.startsWith('10.244.202.0/24')));
    await client.delete(resources.nodes, undefined, 'far');
    await client.delete(resources.nodes, undefined, 'near');
    await routesFollowNodes('no route to the deleted far and near Nodes');
  });

  await t.test('an agent with no guests takes its routes when it stops; a restarted one removes a stale route of its own and keeps other routes', async () => {
    const agent = cluster.agents.find((a) => a.host === host1);
    assert.ok(agent !== undefined);
    await agent.process.stop();
    assert.deepEqual(await routesOn(cluster, host1), [], 'the stopped agent left its routes');
    // A route of Vireo's protocol no Node accounts for (as a crashed agent would leave), and one of someone else.
    await lab.exec(host1, 'ip', 'route', 'add', '10.244.250.0/24', 'via', host2.address, 'proto', String(podRouteProtocol));
    await lab.exec(host1, 'ip', 'route', 'add', '10.244.251.0/24', 'via', host2.address, 'proto', 'static');
    await cluster.startAgent(host1);
    await routesFollowNodes('the restarted agent\'s routes');
    const others = await lab.exec(host1, 'ip', 'route', 'show', 'proto', 'static');
    assert.match(others, /10\.244\.251\.0\/24 via/, 'a route of another protocol was touched');
    await lab.exec(host1, 'ip', 'route', 'del', '10.244.251.0/24', 'proto', 'static');
  });
});
