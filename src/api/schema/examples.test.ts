// KubeVirt's and CDI's own example manifests must pass the models' schemas
// unchanged: nothing pruned, nothing invalid. They are read from the shared
// folder next to the repository, never copied into it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { isPlainObject } from '../object.js';
import { modelSchema } from '../models.js';
import { compileSchema } from './compile.js';

/** Model of each kind the examples use, by apiVersion. */
const modelOf: Record<string, Record<string, string>> = {
  'kubevirt.io/v1': {
    VirtualMachine: 'V1VirtualMachine',
    VirtualMachineInstance: 'V1VirtualMachineInstance',
    VirtualMachineInstanceMigration: 'V1VirtualMachineInstanceMigration',
    VirtualMachineInstancePreset: 'V1VirtualMachineInstancePreset',
  },
  'instancetype.kubevirt.io/v1beta1': {
    VirtualMachineInstancetype: 'V1beta1VirtualMachineInstancetype',
    VirtualMachineClusterInstancetype: 'V1beta1VirtualMachineClusterInstancetype',
    VirtualMachinePreference: 'V1beta1VirtualMachinePreference',
    VirtualMachineClusterPreference: 'V1beta1VirtualMachineClusterPreference',
  },
  'pool.kubevirt.io/v1beta1': { VirtualMachinePool: 'V1beta1VirtualMachinePool' },
  'cdi.kubevirt.io/v1beta1': { DataVolume: 'V1beta1DataVolume', CDIConfig: 'V1beta1CDIConfig' },
  'upload.cdi.kubevirt.io/v1beta1': { UploadTokenRequest: 'V1beta1UploadTokenRequest' },
  v1: { ConfigMap: 'IoK8sApiCoreV1ConfigMap', Secret: 'IoK8sApiCoreV1Secret', PersistentVolume: 'IoK8sApiCoreV1PersistentVolume' },
  'scheduling.k8s.io/v1': { PriorityClass: 'IoK8sApiSchedulingV1PriorityClass' },
};

/** Kinds the examples are known to contain; each must be checked at least once. */
const expectedKinds = [
  'VirtualMachine',
  'VirtualMachineInstance',
  'VirtualMachineInstanceMigration',
  'VirtualMachineInstancePreset',
  'VirtualMachineInstancetype',
  'VirtualMachineClusterInstancetype',
  'VirtualMachinePreference',
  'VirtualMachinePool',
  'DataVolume',
  'CDIConfig',
];

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      const parsed: unknown = JSON.parse(readFileSync(pkg, 'utf8'));
      if (isPlainObject(parsed) && parsed['name'] === 'vireo') return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('repository root (package.json of vireo) not found');
    dir = parent;
  }
}

/** `x` without null-valued fields: decoding drops those, as Kubernetes does for non-nullable fields. */
function withoutNulls(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(withoutNulls);
  if (!isPlainObject(x)) return x;
  return Object.fromEntries(Object.entries(x).filter(([, v]) => v !== null).map(([k, v]) => [k, withoutNulls(v)]));
}

interface Example {
  file: string;
  obj: Record<string, unknown>;
}

function examples(folder: string): Example[] {
  const out: Example[] = [];
  for (const file of readdirSync(folder).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(folder, file), 'utf8'))) {
      const obj: unknown = doc.toJS();
      if (isPlainObject(obj)) out.push({ file, obj });
    }
  }
  return out;
}

for (const name of ['kubevirt-examples', 'cdi-examples']) {
  const folder = join(repoRoot(), '..', 'shared', name);
  const present = existsSync(folder);
  const title = present ? `${name}: every manifest passes its model's schema unchanged` : `${name}: skipped, ${folder} does not exist`;
  test(title, { skip: !present }, () => {
    const seen = new Set<string>();
    let checked = 0;
    for (const { file, obj } of examples(folder)) {
      const apiVersion = String(obj['apiVersion']);
      const kind = String(obj['kind']);
      const model = modelOf[apiVersion]?.[kind];
      if (model === undefined) continue;
      const compiled = compileSchema(modelSchema(model));
      const copy = structuredClone(obj);
      const where = `${file}: ${kind} ${JSON.stringify(isPlainObject(obj['metadata']) ? obj['metadata']['name'] : '')}`;
      assert.deepEqual(compiled.prune(copy), [], `${where}: pruned fields`);
      compiled.applyDefaults(copy);
      assert.deepEqual(compiled.validate(copy), [], `${where}: validation errors`);
      assert.deepEqual(copy, withoutNulls(obj), `${where}: changed by pruning or defaulting`);
      seen.add(kind);
      checked++;
    }
    assert.ok(checked > 0, 'no manifest was checked');
    const expected = expectedKinds.filter((k) => (name === 'cdi-examples') === (k === 'DataVolume' || k === 'CDIConfig'));
    assert.deepEqual(expected.filter((k) => !seen.has(k)), [], 'kinds expected in the examples but not found');
  });
}

test('a broken copy of an example VM is rejected with field paths', () => {
  const vm = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'vm' },
    spec: {
      runStrategy: 'Always',
      surprise: 1,
      template: {
        spec: {
          domain: {
            cpu: { cores: 'two' },
            memory: { guest: '1Gi' },
            devices: { disks: [{ name: 'root', disk: { bus: 'virtio' }, bogus: true }, { disk: { bus: 'virtio' } }] },
          },
          volumes: [{ name: 'root', containerDisk: { image: 1 } }],
        },
      },
    },
  };
  const compiled = compileSchema(modelSchema('V1VirtualMachine'));
  assert.deepEqual(compiled.prune(vm), ['spec.surprise', 'spec.template.spec.domain.devices.disks[0].bogus']);
  compiled.applyDefaults(vm);
  assert.deepEqual(compiled.validate(vm), [
    {
      field: 'spec.template.spec.domain.cpu.cores',
      reason: 'FieldValueTypeInvalid',
      message: 'Invalid value: "string": spec.template.spec.domain.cpu.cores in body must be of type integer: "string"',
    },
    { field: 'spec.template.spec.domain.devices.disks[1].name', reason: 'FieldValueRequired', message: 'Required value' },
    {
      field: 'spec.template.spec.volumes[0].containerDisk.image',
      reason: 'FieldValueTypeInvalid',
      message: 'Invalid value: "integer": spec.template.spec.volumes[0].containerDisk.image in body must be of type string: "integer"',
    },
  ]);
});

test('quantities and int-or-string fields of the models take both forms', () => {
  const compiled = compileSchema(modelSchema('V1VirtualMachineInstance'));
  const vmi = (requests: Record<string, unknown>): Record<string, unknown> => ({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'v' },
    spec: { domain: { devices: {}, resources: { requests } } },
  });
  assert.deepEqual(compiled.validate(vmi({ memory: '64M', cpu: 1 })), []);
  assert.deepEqual(compiled.validate(vmi({ memory: 67108864, cpu: '500m' })), []);
  assert.deepEqual(compiled.validate(vmi({ memory: 'plenty' })).map((e) => [e.field, e.reason]), [['spec.domain.resources.requests.memory', 'FieldValueInvalid']]);
  const pool = compileSchema(modelSchema('V1beta1VirtualMachinePool'));
  const spec = (maxUnavailable: unknown): Record<string, unknown> => ({
    apiVersion: 'pool.kubevirt.io/v1beta1',
    kind: 'VirtualMachinePool',
    metadata: { name: 'p' },
    spec: { maxUnavailable, selector: {}, virtualMachineTemplate: { spec: { template: { spec: { domain: { devices: {} } } } } } },
  });
  assert.deepEqual(pool.validate(spec(1)), []);
  assert.deepEqual(pool.validate(spec('25%')), []);
  assert.deepEqual(pool.validate(spec(true)).map((e) => e.field), ['spec.maxUnavailable']);
});
