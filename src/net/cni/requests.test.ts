import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { multusPlanOf } from './requests.js';

describe('a VMI spec’s multus networks', () => {
  it('are net1, net2… in the order of spec.networks, with their interface’s MAC; the pod network is not one', () => {
    const plan = multusPlanOf(
      {
        domain: { devices: { interfaces: [{ name: 'default', masquerade: {} }, { name: 'red', bridge: {}, macAddress: '02:00:00:00:00:0a' }, { name: 'blue', bridge: {} }] } },
        networks: [{ name: 'default', pod: {} }, { name: 'red', multus: { networkName: 'vms/br10' } }, { name: 'blue', multus: { networkName: 'blue' } }],
      },
      'default',
    );
    assert.deepEqual(plan, {
      requests: [
        { networkName: 'vms/br10', interfaceName: 'net1', mac: '02:00:00:00:00:0a' },
        { networkName: 'blue', interfaceName: 'net2' },
      ],
    });
  });

  it('a default multus network is eth0 and the default of network-status', () => {
    const plan = multusPlanOf(
      {
        domain: { devices: { interfaces: [{ name: 'prim', bridge: {} }, { name: 'sec', bridge: {} }] } },
        networks: [{ name: 'prim', multus: { networkName: 'prim-net', default: true } }, { name: 'sec', multus: { networkName: 'sec-net' } }],
      },
      'team',
    );
    assert.deepEqual(plan, { requests: [{ networkName: 'prim-net', interfaceName: 'eth0' }, { networkName: 'sec-net', interfaceName: 'net1' }], defaultNetwork: 'team/prim-net' });
  });
});
