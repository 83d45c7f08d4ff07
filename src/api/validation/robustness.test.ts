import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import { isPlainObject } from '../object.js';
import { validateKind } from './registry.js';

/** Objects whose every node in turn is swapped for a value of another JSON type. */
function* mutations(value: unknown, replace: (v: unknown) => unknown = (v) => v): Generator {
  const odd: unknown[] = [null, 'x', -1, 1.5, true, [], {}, [null], ['x']];
  for (const o of odd) yield replace(o);
  if (Array.isArray(value)) {
    const items: unknown[] = value;
    for (let i = 0; i < items.length; i++) {
      yield* mutations(items[i], (v) => replace(items.map((item, j) => (j === i ? v : item))));
    }
  } else if (isPlainObject(value)) {
    for (const key of Object.keys(value)) {
      yield* mutations(value[key], (v) => replace({ ...value, [key]: v }));
    }
  }
}

const seeds: [string, KObject][] = [
  [
    'kubevirt.io',
    {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: 'vm' },
      spec: {
        runStrategy: 'Always',
        instancetype: { name: 'u1' },
        dataVolumeTemplates: [{ metadata: { name: 'dv' }, spec: { source: { http: { url: 'https://x/y' } }, storage: { resources: { requests: { storage: '1Gi' } } } } }],
        template: {
          metadata: { labels: { a: 'b' } },
          spec: {
            domain: {
              cpu: { sockets: 1, maxSockets: 2 },
              memory: { guest: '1Gi' },
              resources: { requests: { memory: '1Gi', cpu: '1' }, limits: { memory: '1Gi' } },
              firmware: { bootloader: { efi: { secureBoot: true } } },
              features: { smm: { enabled: true } },
              devices: {
                disks: [{ name: 'root', disk: { bus: 'virtio' }, bootOrder: 1, serial: 's', cache: 'none' }],
                interfaces: [{ name: 'default', masquerade: {}, ports: [{ port: 80, protocol: 'TCP', name: 'http' }] }],
              },
            },
            networks: [{ name: 'default', pod: {} }],
            volumes: [{ name: 'root', dataVolume: { name: 'dv' } }, { name: 'ci', cloudInitNoCloud: { userData: 'x', networkDataBase64: 'eA==' } }],
          },
        },
      },
    },
  ],
  [
    'cdi.kubevirt.io',
    {
      apiVersion: 'cdi.kubevirt.io/v1beta1',
      kind: 'DataVolume',
      metadata: { name: 'dv' },
      spec: { source: { registry: { url: 'docker://x/y', pullMethod: 'node' } }, pvc: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } },
    },
  ],
  ['kubevirt.io', { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name: 'm' }, spec: { vmiName: 'v' } }],
  [
    'pool.kubevirt.io',
    {
      apiVersion: 'pool.kubevirt.io/v1beta1',
      kind: 'VirtualMachinePool',
      metadata: { name: 'p' },
      spec: { selector: { matchLabels: { a: 'b' }, matchExpressions: [{ key: 'a', operator: 'In', values: ['b'] }] }, maxUnavailable: '50%', virtualMachineTemplate: { metadata: { labels: { a: 'b' } }, spec: { runStrategy: 'Halted', template: { spec: {} } } } },
    },
  ],
];

test('kind validation never throws, whatever JSON shape a field has', () => {
  let checked = 0;
  for (const [group, seed] of seeds) {
    for (const spec of mutations(seed['spec'])) {
      const obj: KObject = { ...seed, spec };
      assert.doesNotThrow(() => validateKind(group, seed.kind, obj), `${seed.kind} ${JSON.stringify(spec).slice(0, 200)}`);
      assert.doesNotThrow(() => validateKind(group, seed.kind, obj, seed));
      const template = isPlainObject(spec) ? spec['template'] : undefined;
      const asVmi: KObject = { ...obj, kind: 'VirtualMachineInstance', spec: isPlainObject(template) ? template['spec'] : spec };
      assert.doesNotThrow(() => validateKind('kubevirt.io', 'VirtualMachineInstance', asVmi));
      checked++;
    }
  }
  assert.ok(checked > 500, `only ${checked} mutations`);
});
