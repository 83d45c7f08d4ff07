import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { networkStatusEntries, networkStatusValue } from './network-status.js';
import { decodeResult } from './result.js';

/** What the bridge plugin answers: the bridge and the host veth end first, the sandbox interface last. */
const bridgeResult = decodeResult({
  cniVersion: '1.0.0',
  interfaces: [
    { name: 'br10', mac: 'c6:2c:52:2c:c2:75' },
    { name: 'veth81ddff9c', mac: '5e:55:2c:fb:a7:77' },
    { name: 'net1', mac: 'ae:2f:73:82:7d:96', sandbox: '/run/netns/vmi' },
  ],
  ips: [{ interface: 2, address: '10.199.0.2/24', gateway: '10.199.0.1' }],
  dns: {},
});

describe('network-status annotation', () => {
  it('lists the pod network (default) first, then each NAD with its sandbox interface, addresses without prefix, MAC and dns', () => {
    const value = networkStatusValue({
      podNetwork: { name: 'vireo-pod-network', interface: 'eth0', ips: ['10.244.0.5'], mac: '02:00:00:aa:bb:cc' },
      attachments: [
        { network: 'default/br10', interfaceName: 'net1', result: bridgeResult },
        { network: 'vms/static', interfaceName: 'net2', result: decodeResult({ cniVersion: '0.4.0', interfaces: null, ips: [{ version: '4', address: '192.168.77.10/24' }], dns: { nameservers: ['192.168.77.1'] } }) },
      ],
    });
    assert.equal(
      value,
      '[{"name":"vireo-pod-network","interface":"eth0","ips":["10.244.0.5"],"mac":"02:00:00:aa:bb:cc","default":true,"dns":{}},' +
        '{"name":"default/br10","interface":"net1","ips":["10.199.0.2"],"mac":"ae:2f:73:82:7d:96","dns":{}},' +
        '{"name":"vms/static","interface":"net2","ips":["192.168.77.10"],"dns":{"nameservers":["192.168.77.1"]}}]',
    );
  });

  it('a multus network with default: true takes the default from the pod network', () => {
    const entries = networkStatusEntries({
      attachments: [{ network: 'default/br10', interfaceName: 'net1', result: bridgeResult }],
      defaultNetwork: 'default/br10',
    });
    assert.deepEqual(entries, [{ name: 'default/br10', interface: 'net1', ips: ['10.199.0.2'], mac: 'ae:2f:73:82:7d:96', default: true, dns: {} }]);
  });

  it('a result whose address points past its interfaces is refused', () => {
    assert.throws(() => decodeResult({ cniVersion: '1.0.0', interfaces: [], ips: [{ interface: 0, address: '10.0.0.1/24' }] }), /result\.ips\[0\]\.interface: expected an index into interfaces/);
  });
});
