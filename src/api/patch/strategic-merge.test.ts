import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../errors.js';
import type { JSONSchemaProps } from '../resource.js';
import { applyStrategicMergePatch } from './strategic-merge.js';

const str: JSONSchemaProps = { type: 'string' };
const stringMap: JSONSchemaProps = { type: 'object', additionalProperties: str };
const metadata: JSONSchemaProps = {
  type: 'object',
  properties: {
    labels: stringMap,
    annotations: stringMap,
    finalizers: { type: 'array', items: str, 'x-kubernetes-patch-strategy': 'merge' },
  },
};

// The hints Kubernetes' OpenAPI carries for these fields.
const serviceSchema: JSONSchemaProps = {
  type: 'object',
  properties: {
    metadata,
    spec: {
      type: 'object',
      properties: {
        ports: {
          type: 'array',
          'x-kubernetes-patch-strategy': 'merge',
          'x-kubernetes-patch-merge-key': 'port',
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['port', 'protocol'],
          items: { type: 'object', properties: { name: str, port: { type: 'integer' }, protocol: str, targetPort: { 'x-kubernetes-int-or-string': true } } },
        },
        selector: { ...stringMap, 'x-kubernetes-map-type': 'atomic' },
        externalIPs: { type: 'array', items: str },
      },
    },
  },
};

const container: JSONSchemaProps = {
  type: 'object',
  properties: { name: str, image: str, env: { type: 'array', 'x-kubernetes-patch-strategy': 'merge', 'x-kubernetes-patch-merge-key': 'name', items: { type: 'object' } } },
};
const podSpec: JSONSchemaProps = {
  type: 'object',
  properties: {
    containers: { type: 'array', 'x-kubernetes-patch-strategy': 'merge', 'x-kubernetes-patch-merge-key': 'name', items: container },
    volumes: {
      type: 'array',
      'x-kubernetes-patch-strategy': 'merge,retainKeys',
      'x-kubernetes-patch-merge-key': 'name',
      items: { type: 'object', properties: { name: str, emptyDir: { type: 'object' }, configMap: { type: 'object' } } },
    },
  },
};
const deploymentSchema: JSONSchemaProps = {
  type: 'object',
  properties: {
    metadata,
    spec: {
      type: 'object',
      properties: {
        strategy: { type: 'object', 'x-kubernetes-patch-strategy': 'retainKeys', properties: { type: str, rollingUpdate: { type: 'object' } } },
        template: { type: 'object', properties: { spec: podSpec } },
      },
    },
  },
};

function smp(doc: unknown, patch: unknown, schema: JSONSchemaProps | undefined = serviceSchema): unknown {
  return applyStrategicMergePatch(doc, patch, schema);
}

test('ConfigMap data change from kubectl apply (no merge lists: merge patch plus nulls)', () => {
  const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', labels: { app: 'x', tier: 'web' } }, data: { a: '1', b: '2' } };
  const patch = { data: { a: '2', b: null, c: '3' }, metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}\n' }, labels: { tier: null } } };
  assert.deepEqual(smp(cm, patch, undefined), {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'cfg', labels: { app: 'x' }, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}\n' } },
    data: { a: '2', c: '3' },
  });
  assert.deepEqual(cm.data, { a: '1', b: '2' }, 'input untouched');
});

test('Service ports merge by port, keeping server-set fields, ordered by $setElementOrder', () => {
  const current = {
    metadata: { name: 'web' },
    spec: { clusterIP: '10.96.0.10', selector: { app: 'web', old: 'x' }, ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }] },
  };
  const patch = {
    spec: {
      '$setElementOrder/ports': [{ port: 443 }, { port: 80 }],
      ports: [{ name: 'https', port: 443, targetPort: 8443 }, { port: 80, targetPort: 8081 }],
      selector: { app: 'web2' },
    },
  };
  assert.deepEqual(smp(current, patch), {
    metadata: { name: 'web' },
    spec: {
      clusterIP: '10.96.0.10',
      // The schema does not mark selector as replace, so it merges like any map.
      selector: { app: 'web2', old: 'x' },
      ports: [
        { name: 'https', port: 443, targetPort: 8443 },
        { name: 'http', port: 80, protocol: 'TCP', targetPort: 8081 },
      ],
    },
  });
});

test('removing a port with $patch: delete; lists without hints are replaced', () => {
  const current = { spec: { externalIPs: ['1.1.1.1', '2.2.2.2'], ports: [{ port: 80 }, { port: 443 }, { port: 8080 }] } };
  const patch = { spec: { externalIPs: ['3.3.3.3'], ports: [{ port: 443, $patch: 'delete' }] } };
  assert.deepEqual(smp(current, patch), { spec: { externalIPs: ['3.3.3.3'], ports: [{ port: 80 }, { port: 8080 }] } });
});

test('finalizers: $deleteFromPrimitiveList and $setElementOrder on a merged scalar list', () => {
  const current = { metadata: { finalizers: ['a', 'server', 'b'] } };
  const patch = { metadata: { '$setElementOrder/finalizers': ['c', 'a'], '$deleteFromPrimitiveList/finalizers': ['b'], finalizers: ['c'] } };
  assert.deepEqual(smp(current, patch), { metadata: { finalizers: ['c', 'a', 'server'] } });
  assert.deepEqual(smp(current, { metadata: { '$deleteFromPrimitiveList/missing': ['x'] } }), current);
});

test('merging scalars unions them in Kubernetes order (no $setElementOrder from old clients)', () => {
  assert.deepEqual(smp({ metadata: { finalizers: ['a', 'b'] } }, { metadata: { finalizers: ['b', 'c'] } }), { metadata: { finalizers: ['a', 'b', 'c'] } });
  // A live item only goes before a patch item it preceded; unknown patch items go first.
  assert.deepEqual(smp({ metadata: { finalizers: ['a', 'b'] } }, { metadata: { finalizers: ['c', 'b'] } }), { metadata: { finalizers: ['c', 'a', 'b'] } });
});

test('containers merge by name, nested env lists too; $patch: replace on a list', () => {
  const current = {
    spec: {
      template: {
        spec: {
          containers: [
            { name: 'app', image: 'app:1', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] },
            { name: 'sidecar', image: 'side:1' },
          ],
        },
      },
    },
  };
  const patch = {
    spec: { template: { spec: { containers: [{ name: 'app', image: 'app:2', env: [{ name: 'B', value: null, valueFrom: { x: 1 } }] }] } } },
  };
  assert.deepEqual(smp(current, patch, deploymentSchema), {
    spec: {
      template: {
        spec: {
          containers: [
            { name: 'app', image: 'app:2', env: [{ name: 'A', value: '1' }, { name: 'B', valueFrom: { x: 1 } }] },
            { name: 'sidecar', image: 'side:1' },
          ],
        },
      },
    },
  });
  const replaced = smp(current, { spec: { template: { spec: { containers: [{ $patch: 'replace' }, { name: 'only', image: 'x' }] } } } }, deploymentSchema);
  assert.deepEqual(replaced, { spec: { template: { spec: { containers: [{ name: 'only', image: 'x' }] } } } });
});

test('$retainKeys clears the other member of a union (Deployment strategy, volume sources)', () => {
  const current = {
    spec: {
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } },
      template: { spec: { volumes: [{ name: 'v', emptyDir: {} }] } },
    },
  };
  const patch = {
    spec: {
      strategy: { $retainKeys: ['type'], type: 'Recreate', rollingUpdate: null },
      template: { spec: { volumes: [{ $retainKeys: ['configMap', 'name'], name: 'v', configMap: { name: 'cm' } }] } },
    },
  };
  assert.deepEqual(smp(current, patch, deploymentSchema), {
    spec: { strategy: { type: 'Recreate' }, template: { spec: { volumes: [{ name: 'v', configMap: { name: 'cm' } }] } } },
  });
  assert.throws(
    () => smp(current, { spec: { strategy: { $retainKeys: ['type'], type: 'Recreate', other: 1 } } }, deploymentSchema),
    (e: unknown) => e instanceof ApiError && e.httpCode === 400 && /invalid patch format of retainKeys/.test(e.message),
  );
});

test('map directives: $patch replace and delete', () => {
  assert.deepEqual(smp({ a: { x: 1, y: 2 } }, { a: { $patch: 'replace', z: 3 } }), { a: { z: 3 } });
  assert.deepEqual(smp({ a: { x: 1, y: 2 } }, { a: { $patch: 'delete' } }), { a: {} });
  assert.deepEqual(smp({ a: 1 }, { $patch: 'replace', b: 2 }), { b: 2 });
  assert.deepEqual(smp({ a: { x: 1 } }, { a: { $patch: 'merge', y: 2 } }), { a: { x: 1, y: 2 } });
  // New values are stored without nulls or directives.
  assert.deepEqual(smp({}, { a: { b: null, c: { $patch: 'delete' }, d: 1 } }), { a: { d: 1 } });
});

// Vectors from apimachinery's strategicpatch tests (ThreeWay patch applied to Current gives Result).
const listSchema: JSONSchemaProps = {
  type: 'object',
  properties: {
    mergingList: { type: 'array', 'x-kubernetes-patch-strategy': 'merge', 'x-kubernetes-patch-merge-key': 'name', items: { type: 'object' } },
    mergingIntList: { type: 'array', 'x-kubernetes-patch-strategy': 'merge', items: { type: 'integer' } },
  },
};

test('server-only items keep their place relative to the live list', () => {
  const current = { mergingList: [{ name: 1, other: 'a' }, { name: 2, value: 2 }, { name: 9 }, { name: 3, value: 3 }, { name: 4, value: 4 }] };
  const patch = { '$setElementOrder/mergingList': [{ name: 2 }, { name: 1 }, { name: 4 }, { name: 3 }] };
  assert.deepEqual(smp(current, patch, listSchema), {
    mergingList: [{ name: 2, value: 2 }, { name: 1, other: 'a' }, { name: 9 }, { name: 4, value: 4 }, { name: 3, value: 3 }],
  });
  const current3 = { mergingList: [{ name: 1 }, { name: 2 }, { name: 7 }, { name: 9 }, { name: 8 }, { name: 3 }, { name: 4 }] };
  assert.deepEqual(
    smp(current3, patch, listSchema),
    { mergingList: [{ name: 2 }, { name: 1 }, { name: 7 }, { name: 9 }, { name: 8 }, { name: 4 }, { name: 3 }] },
  );
});

test('merge lists of maps and of scalars with $setElementOrder', () => {
  const current = { mergingList: [{ name: 1, other: 'a' }, { name: 2, value: 2, other: 'b' }] };
  const patch = {
    '$setElementOrder/mergingList': [{ name: 4 }, { name: 1 }, { name: 2 }, { name: 3 }],
    mergingList: [{ name: 4, value: 4 }, { name: 3, value: 3 }],
  };
  assert.deepEqual(smp(current, patch, listSchema), {
    mergingList: [{ name: 4, value: 4 }, { name: 1, other: 'a' }, { name: 2, value: 2, other: 'b' }, { name: 3, value: 3 }],
  });
  assert.deepEqual(smp({ mergingIntList: [1, 2, 4] }, { '$setElementOrder/mergingIntList': [1, 2, 3], mergingIntList: [3] }, listSchema), {
    mergingIntList: [1, 2, 3, 4],
  });
});

test('delete all duplicate entries in a merging list', () => {
  const current = { mergingList: [{ name: 1 }, { name: 1 }, { name: 2, value: 'a' }, { name: 3 }, { name: 3 }] };
  const patch = { mergingList: [{ name: 1, $patch: 'delete' }, { name: 3, $patch: 'delete' }] };
  assert.deepEqual(smp(current, patch, listSchema), { mergingList: [{ name: 2, value: 'a' }] });
});

test('malformed patches', () => {
  const bad = (doc: unknown, patch: unknown, reason: string, pattern: RegExp): void => {
    assert.throws(() => smp(doc, patch, listSchema), (e: unknown) => e instanceof ApiError && e.reason === reason && pattern.test(e.message));
  };
  bad({}, [], 'BadRequest', /must be a JSON object/);
  bad({ mergingList: [{ name: 1 }] }, { mergingList: [{ value: 'b' }] }, 'BadRequest', /does not contain declared merge key: name/);
  bad({ mergingList: [[1]] }, { mergingList: [[2]] }, 'Invalid', /lists of lists are not supported/);
  bad({ mergingIntList: [1] }, { mergingIntList: ['a'] }, 'BadRequest', /list element types are not identical/);
  bad({}, { '$setElementOrder/mergingList': 'x' }, 'BadRequest', /invalid patch format of setElementOrder list/);
  bad({ mergingList: [] }, { '$setElementOrder/mergingList': [{ name: 1 }, { name: 2 }], mergingList: [{ name: 2 }, { name: 1 }] }, 'BadRequest', /doesn't match the \$setElementOrder list/);
  bad({ a: {} }, { a: { $patch: 'frob' } }, 'BadRequest', /unknown patch type: "frob"/);
  bad({}, { '$deleteFromPrimitiveList/x': 'y' }, 'BadRequest', /invalid patch format of primitive list/);
});
