import { strict as assert } from 'node:assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { findConfFile, parseNetworkConfig, pluginInput, supportsCheck } from './config.js';
import { CniError } from './errors.js';

const source = 'network-attachment-definition default/br10';

function refusal(text: string, pattern: RegExp): void {
  assert.throws(() => parseNetworkConfig(text, { source, defaultName: 'br10' }), (err: unknown) => {
    assert.ok(err instanceof CniError);
    assert.equal(err.failure, 'InvalidConfig');
    assert.match(err.message, pattern);
    return true;
  });
}

describe('CNI network configs', () => {
  it('a single plugin config is a list of one; a missing name is the NAD’s', () => {
    const list = parseNetworkConfig('{"cniVersion":"0.3.1","type":"bridge","bridge":"br10"}', { source, defaultName: 'br10' });
    assert.deepEqual(list, { name: 'br10', cniVersion: '0.3.1', disableCheck: false, plugins: [{ type: 'bridge', config: { cniVersion: '0.3.1', type: 'bridge', bridge: 'br10' } }] });
    assert.equal(supportsCheck(list), false);
  });

  it('a conflist keeps its plugins in order and its disableCheck', () => {
    const list = parseNetworkConfig('{"cniVersion":"1.0.0","name":"net","disableCheck":true,"plugins":[{"type":"bridge"},{"type":"tuning"}]}', { source });
    assert.deepEqual(list.plugins.map((p) => p.type), ['bridge', 'tuning']);
    assert.equal(list.disableCheck, true);
    assert.equal(supportsCheck(list), true);
  });

  it('refuses what no plugin could run, saying what is wrong', () => {
    refusal('{"cniVersion":"1.0.0",', /^network-attachment-definition default\/br10 has a CNI config that is not valid JSON \(.+\): fix the JSON$/);
    refusal('[1]', /is not a JSON object/);
    refusal('{"type":"bridge"}', /has no "cniVersion" \(one of 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0\)/);
    refusal('{"cniVersion":"0.2.0","type":"bridge"}', /cniVersion "0\.2\.0" is not supported: use one of/);
    refusal('{"cniVersion":"1.0.0"}', /the CNI config has no plugin "type"/);
    refusal('{"cniVersion":"1.0.0","plugins":[]}', /"plugins" must be a non-empty array/);
    refusal('{"cniVersion":"1.0.0","plugins":[{"type":"bridge"},{"ipam":{}}]}', /plugins\[1\] has no plugin "type"/);
    refusal('{"cniVersion":"1.0.0","type":"../../bin/sh"}', /plugin type "\.\.\/\.\.\/bin\/sh", which is not a plugin binary name/);
  });

  it('a plugin gets the list’s name and version, the previous result, and runtimeConfig only for its declared capabilities', () => {
    const list = parseNetworkConfig('{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"bridge","cniVersion":"0.3.1","name":"other"},{"type":"tuning","capabilities":{"mac":true}}]}', { source });
    const [bridge, tuning] = list.plugins;
    assert.ok(bridge !== undefined && tuning !== undefined);
    assert.deepEqual(pluginInput(list, bridge, { runtime: { mac: '02:00:00:00:00:01' } }), { type: 'bridge', cniVersion: '1.0.0', name: 'net' });
    assert.deepEqual(pluginInput(list, tuning, { prevResult: { cniVersion: '1.0.0' }, runtime: { mac: '02:00:00:00:00:01' } }), {
      type: 'tuning',
      capabilities: { mac: true },
      name: 'net',
      cniVersion: '1.0.0',
      prevResult: { cniVersion: '1.0.0' },
      runtimeConfig: { mac: '02:00:00:00:00:01' },
    });
  });

  it('finds the conf file whose name matches, as Multus does for a NAD without spec.config', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vireo-cni-conf-'));
    try {
      await writeFile(join(dir, '00-broken.conf'), '{not json');
      await writeFile(join(dir, '10-other.conf'), '{"cniVersion":"1.0.0","name":"other","type":"bridge"}');
      await writeFile(join(dir, '20-mine.conflist'), '{"cniVersion":"1.0.0","name":"mine","plugins":[{"type":"macvlan"}]}');
      await writeFile(join(dir, 'README'), 'not a conf file');
      assert.deepEqual((await findConfFile(dir, 'mine'))?.plugins.map((p) => p.type), ['macvlan']);
      assert.equal(await findConfFile(dir, 'absent'), undefined);
      assert.equal(await findConfFile(join(dir, 'no-such-dir'), 'mine'), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
