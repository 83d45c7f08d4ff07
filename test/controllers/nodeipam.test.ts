import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { arrayAt, stringAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { NodeIpamController, parseClusterCidrs } from '../../src/controllers/nodeipam/controller.js';
import type { Env } from './support.js';
import { eventually, nodeManifest, startEnv } from './support.js';

let env: Env;
let ipam: NodeIpamController;

before(async () => {
  env = await startEnv();
  // A small range so that exhaustion is reachable: two /24s and two /64s.
  ipam = new NodeIpamController(env.client, silentLogger, { clusterCidrs: parseClusterCidrs('10.99.0.0/23,fd99::/63') });
  await ipam.start();
});
after(async () => {
  await ipam.stop();
  await env.close();
});

async function podCidrs(name: string): Promise<unknown[]> {
  const node = await env.client.get(resources.nodes, undefined, name);
  return arrayAt(node, 'spec', 'podCIDRs');
}

test('each Node gets its own IPv4 and IPv6 subnet, podCIDR the IPv4 one', async () => {
  await env.client.create(resources.nodes, nodeManifest('n1', { cpu: '2', memory: '1Gi' }));
  await env.client.create(resources.nodes, nodeManifest('n2', { cpu: '2', memory: '1Gi' }));
  const one = await eventually(async () => { const c = await podCidrs('n1'); return c.length === 2 ? c : undefined; }, { what: 'n1 podCIDRs' });
  const two = await eventually(async () => { const c = await podCidrs('n2'); return c.length === 2 ? c : undefined; }, { what: 'n2 podCIDRs' });
  assert.deepEqual(new Set([one[0], two[0]]), new Set(['10.99.0.0/24', '10.99.1.0/24']));
  assert.deepEqual(new Set([one[1], two[1]]), new Set(['fd99::/64', 'fd99:0:0:1::/64']));
  assert.equal(stringAt(await env.client.get(resources.nodes, undefined, 'n1'), 'spec', 'podCIDR'), one[0]);
});

test('a full range leaves a third Node without, until a Node goes and frees its subnets', async () => {
  await env.client.create(resources.nodes, nodeManifest('n3', { cpu: '2', memory: '1Gi' }));
  await eventually(async () => {
    const events = await env.client.list(resources.events);
    return events.items.some((e) => stringAt(e, 'reason') === 'CIDRNotAvailable' && stringAt(e, 'involvedObject', 'name') === 'n3');
  }, { what: 'CIDRNotAvailable event for n3' });
  assert.deepEqual(await podCidrs('n3'), []);
  const freed = await podCidrs('n1');
  await env.client.delete(resources.nodes, undefined, 'n1');
  // The controller retries n3 on its own (requeue) or when any Node changes; poke it with a label to be quick.
  await env.client.patch(resources.nodes, undefined, 'n3', 'merge', { metadata: { labels: { poke: 'yes' } } });
  const got = await eventually(async () => { const c = await podCidrs('n3'); return c.length === 2 ? c : undefined; }, { what: 'n3 podCIDRs', timeoutMs: 10_000 });
  assert.deepEqual(got, freed);
});

test('--cluster-cidr refuses two ranges of one family and bad CIDRs', () => {
  assert.throws(() => parseClusterCidrs('10.0.0.0/16,10.1.0.0/16'), /at most one IPv4 and one IPv6/);
  assert.throws(() => parseClusterCidrs('10.0.0.1/16'), /host bits set/);
  assert.throws(() => parseClusterCidrs(''), /is empty/);
});
