import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../api/errors.js';
import { entry, envelope, fixed32, msg, num, str } from './encode.js';
import { decodeProtobufObject } from './kube.js';

function decode(apiVersion: string, kind: string, ...fields: Buffer[]): Record<string, unknown> {
  return decodeProtobufObject(envelope(apiVersion, kind, Buffer.concat(fields)));
}

/** 2024-02-29T12:34:56.789Z as a meta/v1 Time {seconds = 1, nanos = 2}. */
const leapDay = [num(1, 1_709_210_096), num(2, 789_000_000)];

test('ObjectMeta: every field, with its proto field number', () => {
  const object = decode(
    'v1',
    'ConfigMap',
    msg(
      1,
      str(1, 'cm'),
      str(2, 'cm-'),
      str(3, 'ns'),
      str(4, '/api/v1/namespaces/ns/configmaps/cm'),
      str(5, 'u-1'),
      str(6, '42'),
      num(7, 3),
      msg(8, ...leapDay),
      msg(9, num(1, 1_709_210_100)),
      num(10, 30),
      entry(11, 'app', 'web'),
      entry(11, 'tier', ''),
      entry(12, 'note', 'x'),
      msg(13, str(1, 'Deployment'), str(3, 'web'), str(4, 'u-0'), str(5, 'apps/v1'), num(6, true), num(7, false)),
      str(14, 'example.com/a'),
      str(14, 'example.com/b'),
      msg(17, str(1, 'kubectl'), str(2, 'Apply'), str(3, 'v1'), msg(4, ...leapDay), str(6, 'FieldsV1'), msg(7, str(1, '{"f:data":{".":{}}}')), str(8, 'status')),
    ),
  );
  assert.deepEqual(object.metadata, {
    name: 'cm',
    generateName: 'cm-',
    namespace: 'ns',
    selfLink: '/api/v1/namespaces/ns/configmaps/cm',
    uid: 'u-1',
    resourceVersion: '42',
    generation: 3,
    creationTimestamp: '2024-02-29T12:34:56Z',
    deletionTimestamp: '2024-02-29T12:35:00Z',
    deletionGracePeriodSeconds: 30,
    labels: { app: 'web', tier: '' },
    annotations: { note: 'x' },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'u-0', controller: true, blockOwnerDeletion: false }],
    finalizers: ['example.com/a', 'example.com/b'],
    managedFields: [
      { manager: 'kubectl', operation: 'Apply', apiVersion: 'v1', time: '2024-02-29T12:34:56Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:data': { '.': {} } }, subresource: 'status' },
    ],
  });
});

test('ObjectMeta: zero values Go leaves out are left out; a zero pointer written by the client is kept', () => {
  const object = decode('v1', 'ConfigMap', msg(1, str(1, 'cm'), str(2, ''), str(5, ''), num(7, 0), msg(8), num(10, 0), msg(13)));
  assert.deepEqual(object.metadata, { name: 'cm', deletionGracePeriodSeconds: 0, ownerReferences: [{ apiVersion: '', kind: '', name: '', uid: '' }] });
});

test('Time: the zero time (empty, or year 1) is null where Go writes it, and years outside 1..9999 are refused', () => {
  const pointer = (...time: Buffer[]): unknown => (decode('v1', 'ConfigMap', msg(1, msg(9, ...time))).metadata as Record<string, unknown>).deletionTimestamp;
  assert.equal(pointer(), null);
  assert.equal(pointer(num(1, -62_135_596_800)), null);
  assert.equal(pointer(num(1, 0)), '1970-01-01T00:00:00Z');
  assert.equal(pointer(num(1, -1)), '1969-12-31T23:59:59Z');
  assert.equal(pointer(num(1, 253_402_300_799)), '9999-12-31T23:59:59Z');
  assert.equal(pointer(num(1, 10), num(2, 1_500_000_000)), '1970-01-01T00:00:11Z');
  assert.equal(pointer(num(1, 10), num(2, -1)), '1970-01-01T00:00:09Z');
  assert.throws(() => pointer(num(1, 253_402_300_800)), (err: unknown) => err instanceof ApiError && err.httpCode === 400 && /outside years 1 to 9999/.test(err.message));
});

test('ConfigMap: immutable is a pointer (false is kept), binaryData is base64, map entries may lack key or value', () => {
  const object = decode('v1', 'ConfigMap', msg(1, str(1, 'cm')), num(4, false), entry(2, 'a', 'b'), msg(2, str(1, 'novalue')), msg(2, str(2, 'nokey')), entry(3, 'bin', Buffer.from([0, 1, 255])));
  assert.deepEqual(object, { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'cm' }, immutable: false, data: { a: 'b', novalue: '', '': 'nokey' }, binaryData: { bin: 'AAH/' } });
});

test('ConfigMap: a repeated map key keeps the last value, and "__proto__" stays a plain key', () => {
  const object = decode('v1', 'ConfigMap', entry(2, 'k', '1'), entry(2, 'k', '2'), entry(2, '__proto__', 'p'));
  const data = object.data as Record<string, unknown>;
  assert.equal(data.k, '2');
  assert.ok(Object.hasOwn(data, '__proto__'));
  assert.equal(Object.getPrototypeOf(data), Object.prototype);
});

test('Secret: data as base64, stringData as text, type, immutable', () => {
  const object = decode('v1', 'Secret', msg(1, str(1, 's')), num(5, true), entry(2, 'tls.key', 'k\n'), entry(2, 'empty', ''), entry(4, 'plain', 'text'), str(3, 'kubernetes.io/tls'));
  assert.deepEqual(object, {
    kind: 'Secret',
    apiVersion: 'v1',
    metadata: { name: 's' },
    immutable: true,
    data: { 'tls.key': 'awo=', empty: '' },
    stringData: { plain: 'text' },
    type: 'kubernetes.io/tls',
  });
});

test('Namespace: spec finalizers and status with conditions; empty spec and status are written as {}', () => {
  assert.deepEqual(decode('v1', 'Namespace', msg(1, str(1, 'n'))), { kind: 'Namespace', apiVersion: 'v1', metadata: { name: 'n' }, spec: {}, status: {} });
  const object = decode(
    'v1',
    'Namespace',
    msg(1, str(1, 'n')),
    msg(2, str(1, 'kubernetes')),
    msg(3, str(1, 'Terminating'), msg(2, str(1, 'NamespaceDeletionContentFailure'), str(2, 'False'), msg(4, ...leapDay), str(5, 'ContentDeleted'), str(6, 'All content deleted')), msg(2, str(1, 'X'), str(2, 'True'))),
  );
  assert.deepEqual(object.spec, { finalizers: ['kubernetes'] });
  assert.deepEqual(object.status, {
    phase: 'Terminating',
    conditions: [
      { type: 'NamespaceDeletionContentFailure', status: 'False', lastTransitionTime: '2024-02-29T12:34:56Z', reason: 'ContentDeleted', message: 'All content deleted' },
      { type: 'X', status: 'True', lastTransitionTime: null },
    ],
  });
});

test('ServiceAccount: secrets (ObjectReference), imagePullSecrets (LocalObjectReference), automount false kept', () => {
  const object = decode(
    'v1',
    'ServiceAccount',
    msg(1, str(1, 'sa'), str(3, 'ns')),
    msg(2, str(1, 'Secret'), str(2, 'ns'), str(3, 'tok'), str(4, 'u'), str(5, 'v1'), str(6, '7'), str(7, 'data')),
    msg(2, str(3, 'other')),
    msg(3, str(1, 'regcred')),
    num(4, false),
  );
  assert.deepEqual(object, {
    kind: 'ServiceAccount',
    apiVersion: 'v1',
    metadata: { name: 'sa', namespace: 'ns' },
    secrets: [{ kind: 'Secret', namespace: 'ns', name: 'tok', uid: 'u', apiVersion: 'v1', resourceVersion: '7', fieldPath: 'data' }, { name: 'other' }],
    imagePullSecrets: [{ name: 'regcred' }],
    automountServiceAccountToken: false,
  });
});

test('Service: every spec field, IntOrString both ways, session affinity config, a status with ingress and conditions', () => {
  const object = decode(
    'v1',
    'Service',
    msg(1, str(1, 'svc')),
    msg(
      2,
      msg(1, str(1, 'http'), str(2, 'TCP'), str(6, 'kubernetes.io/h2c'), num(3, 80), msg(4, num(1, 1), num(2, 0), str(3, 'web')), num(5, 30080)),
      msg(1, num(3, 53), msg(4, num(1, 0), num(2, 5353))),
      entry(2, 'app', 'web'),
      str(3, '10.0.0.1'),
      str(18, '10.0.0.1'),
      str(18, 'fd00::1'),
      str(4, 'LoadBalancer'),
      str(5, '192.0.2.1'),
      str(7, 'ClientIP'),
      str(8, '192.0.2.2'),
      str(9, '192.0.2.0/24'),
      str(10, 'example.com'),
      str(11, 'Local'),
      num(12, 31000),
      num(13, true),
      msg(14, msg(1, num(1, 10800))),
      str(19, 'IPv4'),
      str(19, 'IPv6'),
      str(17, 'PreferDualStack'),
      num(20, false),
      str(21, 'example.com/lb'),
      str(22, 'Cluster'),
      str(23, 'PreferClose'),
    ),
    msg(3, msg(1, msg(1, str(1, '192.0.2.9'), str(2, 'lb.example.com'), str(3, 'VIP'), msg(4, num(1, 80), str(2, 'TCP'), str(3, 'pending')))), msg(2, str(1, 'Ready'), str(2, 'True'), num(3, 2), msg(4, ...leapDay), str(5, 'Up'), str(6, ''))),
  );
  assert.deepEqual(object.spec, {
    ports: [
      { name: 'http', protocol: 'TCP', appProtocol: 'kubernetes.io/h2c', port: 80, targetPort: 'web', nodePort: 30080 },
      { port: 53, targetPort: 5353 },
    ],
    selector: { app: 'web' },
    clusterIP: '10.0.0.1',
    clusterIPs: ['10.0.0.1', 'fd00::1'],
    type: 'LoadBalancer',
    externalIPs: ['192.0.2.1'],
    sessionAffinity: 'ClientIP',
    loadBalancerIP: '192.0.2.2',
    loadBalancerSourceRanges: ['192.0.2.0/24'],
    externalName: 'example.com',
    externalTrafficPolicy: 'Local',
    healthCheckNodePort: 31000,
    publishNotReadyAddresses: true,
    sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
    ipFamilies: ['IPv4', 'IPv6'],
    ipFamilyPolicy: 'PreferDualStack',
    allocateLoadBalancerNodePorts: false,
    loadBalancerClass: 'example.com/lb',
    internalTrafficPolicy: 'Cluster',
    trafficDistribution: 'PreferClose',
  });
  assert.deepEqual(object.status, {
    loadBalancer: { ingress: [{ ip: '192.0.2.9', hostname: 'lb.example.com', ipMode: 'VIP', ports: [{ port: 80, protocol: 'TCP', error: 'pending' }] }] },
    conditions: [{ type: 'Ready', status: 'True', observedGeneration: 2, lastTransitionTime: '2024-02-29T12:34:56Z', reason: 'Up', message: '' }],
  });
});

test('Service: an absent targetPort is 0 and absent spec and status are written, as Go writes struct values', () => {
  assert.deepEqual(decode('v1', 'Service', msg(2, msg(1, num(3, 80)))), { kind: 'Service', apiVersion: 'v1', metadata: {}, spec: { ports: [{ port: 80, targetPort: 0 }] }, status: { loadBalancer: {} } });
  assert.deepEqual(decode('v1', 'Service'), { kind: 'Service', apiVersion: 'v1', metadata: {}, spec: {}, status: { loadBalancer: {} } });
});

test('IntOrString of an unknown type is refused', () => {
  assert.throws(() => decode('v1', 'Service', msg(2, msg(1, msg(4, num(1, 2))))), (err: unknown) => err instanceof ApiError && err.httpCode === 400 && /IntOrString has type 2/.test(err.message));
});

test('PriorityClass: value is always written, globalDefault only when true, preemptionPolicy when sent', () => {
  assert.deepEqual(decode('scheduling.k8s.io/v1', 'PriorityClass', msg(1, str(1, 'pc')), num(3, false)), { kind: 'PriorityClass', apiVersion: 'scheduling.k8s.io/v1', metadata: { name: 'pc' }, value: 0 });
  assert.deepEqual(decode('scheduling.k8s.io/v1', 'PriorityClass', msg(1, str(1, 'pc')), num(2, -5), num(3, true), str(4, 'd'), str(5, 'PreemptLowerPriority')), {
    kind: 'PriorityClass',
    apiVersion: 'scheduling.k8s.io/v1',
    metadata: { name: 'pc' },
    value: -5,
    globalDefault: true,
    description: 'd',
    preemptionPolicy: 'PreemptLowerPriority',
  });
});

test('unknown fields of any wire type are skipped, as Kubernetes decoders skip them', () => {
  const object = decode('v1', 'ConfigMap', msg(1, str(1, 'cm'), str(15, 'retired clusterName'), num(99, 1)), fixed32(50), str(51, 'x'), entry(2, 'a', 'b'));
  assert.deepEqual(object, { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'cm' }, data: { a: 'b' } });
});

test('a message field sent twice merges, as protobuf specifies; a scalar sent twice keeps the last', () => {
  const object = decode('v1', 'ConfigMap', msg(1, str(1, 'first'), entry(11, 'a', '1')), msg(1, str(1, 'second'), entry(11, 'b', '2')));
  assert.deepEqual(object.metadata, { name: 'second', labels: { a: '1', b: '2' } });
});

test('a known field with the wrong wire type is a 400 naming the field', () => {
  assert.throws(
    () => decode('v1', 'ConfigMap', msg(1, num(1, 5))),
    (err: unknown) => err instanceof ApiError && err.httpCode === 400 && /ObjectMeta\.name \(field 1\) has wire type 0, expected 2/.test(err.message),
  );
  assert.throws(() => decode('v1', 'ConfigMap', str(4, 'yes')), (err: unknown) => err instanceof ApiError && /ConfigMap\.immutable \(field 4\) has wire type 2, expected 0/.test(err.message));
});

test('fieldsV1 that is not JSON is refused', () => {
  assert.throws(() => decode('v1', 'ConfigMap', msg(1, msg(17, msg(7, str(1, '{nope'))))), (err: unknown) => err instanceof ApiError && err.httpCode === 400 && /fieldsV1 that is not JSON/.test(err.message));
});
