import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCidr } from './cidr.js';
import { AddressNotAvailable, NodeIpam, foreignAddresses } from './ipam.js';

const home = [parseCidr('10.244.0.0/24'), parseCidr('fd10:244::/64')];
const other = [parseCidr('10.244.1.0/24'), parseCidr('fd10:244:0:1::/64')];

test('a migrated VMI keeps its addresses: host addresses on another node, its own departed lease back home; others cannot take them', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'vireo-ipam-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const source = new NodeIpam(join(root, 'a'));
  const target = new NodeIpam(join(root, 'b'));
  const first = await source.acquire('vm', home);
  assert.deepEqual(first.addresses, ['10.244.0.2/24', 'fd10:244::2/64']);

  const kept = await target.keep('vm', other, ['10.244.0.2', 'fd10:244::2']);
  assert.deepEqual(kept.addresses, ['10.244.0.2/32', 'fd10:244::2/128']);
  assert.deepEqual(foreignAddresses(kept, other), ['10.244.0.2', 'fd10:244::2']);

  assert.equal(await source.depart('vm'), true);
  assert.equal((await source.leases()).get('vm')?.departed, true);
  // Still taken while the VMI lives elsewhere.
  assert.deepEqual((await source.acquire('next', home)).addresses, ['10.244.0.3/24', 'fd10:244::3/64']);
  await assert.rejects(source.keep('intruder', home, ['10.244.0.2']), (err: unknown) => err instanceof AddressNotAvailable && /leased to another VMI \(uid vm\)/.test(err.message));

  // Back home: the same addresses with the subnet's prefix, still departed until the VMI is gone.
  const back = await source.keep('vm', home, ['10.244.0.2', 'fd10:244::2']);
  assert.deepEqual(back, { uid: 'vm', addresses: ['10.244.0.2/24', 'fd10:244::2/64'], departed: true });
  await assert.rejects(source.keep('odd', home, ['10.244.0.1']), /gateway/);
});
