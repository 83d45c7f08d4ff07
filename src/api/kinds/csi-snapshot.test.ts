import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stringAt } from './read.js';
import { csiSnapshotCustomResourceDefinitions } from './csi-snapshot.js';
import { validateCustomResourceDefinition } from './crd-validation.js';

test('the CSI snapshot CRDs are valid, with external-snapshotter\'s names and scopes', () => {
  const crds = csiSnapshotCustomResourceDefinitions();
  assert.deepEqual(
    crds.map((c) => [c.metadata.name, stringAt(c, 'spec', 'scope'), (c.spec as { names: { shortNames: string[] } }).names.shortNames]),
    [
      ['volumesnapshotclasses.snapshot.storage.k8s.io', 'Cluster', ['vsclass', 'vsclasses']],
      ['volumesnapshots.snapshot.storage.k8s.io', 'Namespaced', ['vs']],
      ['volumesnapshotcontents.snapshot.storage.k8s.io', 'Cluster', ['vsc', 'vscs']],
    ],
  );
  for (const crd of crds) assert.deepEqual(validateCustomResourceDefinition(crd), [], crd.metadata.name);
});
