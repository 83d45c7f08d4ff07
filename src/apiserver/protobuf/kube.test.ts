import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../api/errors.js';
import { decodeBody } from '../body.js';
import { envelope, msg, num, str } from './encode.js';
import { decodeProtobufObject, readEnvelope } from './kube.js';

/**
 * Request bodies recorded from kubectl 1.33 (1.32's are byte-for-byte the
 * same) by a listener standing in for the server, with the object
 * `kubectl create … --dry-run=client -o json` printed for the same command,
 * less its `creationTimestamp: null` (see the ObjectMeta table).
 */
const recorded: { command: string; body: string; json: Record<string, unknown> }[] = [
  {
    command: 'create configmap cm1 --from-literal=a=b --from-literal=c= --from-file=f.txt --from-file=bin=bin.dat',
    body: 'azhzAAoPCgJ2MRIJQ29uZmlnTWFwEkEKEwoDY20xEgAaACIAKgAyADgAQgASBgoBYRIBYhIFCgFjEgASDwoFZi50eHQSBmhlbGxvChoKCgNiaW4SAwAB/xoAIgA=',
    json: { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'cm1' }, data: { a: 'b', c: '', 'f.txt': 'hello\n' }, binaryData: { bin: 'AAH/' } },
  },
  {
    command: 'create secret generic s1 --from-literal=a=b --type=Opaque',
    body: 'azhzAAoMCgJ2MRIGU2VjcmV0EiQKEgoCczESABoAIgAqADIAOABCABIGCgFhEgFiGgZPcGFxdWUaACIA',
    json: { kind: 'Secret', apiVersion: 'v1', metadata: { name: 's1' }, data: { a: 'Yg==' }, type: 'Opaque' },
  },
  {
    command: 'create secret docker-registry d1 --docker-server=r.io --docker-username=u --docker-password=p --docker-email=e@x',
    body: 'azhzAAoMCgJ2MRIGU2VjcmV0EpkBChIKAmQxEgAaACIAKgAyADgAQgASYwoRLmRvY2tlcmNvbmZpZ2pzb24STnsiYXV0aHMiOnsici5pbyI6eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InAiLCJlbWFpbCI6ImVAeCIsImF1dGgiOiJkVHB3In19fRoea3ViZXJuZXRlcy5pby9kb2NrZXJjb25maWdqc29uGgAiAA==',
    json: {
      kind: 'Secret',
      apiVersion: 'v1',
      metadata: { name: 'd1' },
      data: { '.dockerconfigjson': 'eyJhdXRocyI6eyJyLmlvIjp7InVzZXJuYW1lIjoidSIsInBhc3N3b3JkIjoicCIsImVtYWlsIjoiZUB4IiwiYXV0aCI6ImRUcHcifX19' },
      type: 'kubernetes.io/dockerconfigjson',
    },
  },
  {
    command: 'create namespace ns1',
    body: 'azhzAAoPCgJ2MRIJTmFtZXNwYWNlEhsKEwoDbnMxEgAaACIAKgAyADgAQgASABoCCgAaACIA',
    json: { kind: 'Namespace', apiVersion: 'v1', metadata: { name: 'ns1' }, spec: {}, status: {} },
  },
  {
    command: 'create serviceaccount sa1',
    body: 'azhzAAoUCgJ2MRIOU2VydmljZUFjY291bnQSFQoTCgNzYTESABoAIgAqADIAOABCABoAIgA=',
    json: { kind: 'ServiceAccount', apiVersion: 'v1', metadata: { name: 'sa1' } },
  },
  {
    command: 'create service nodeport svc2 --tcp=80:8080 --node-port=30080',
    body: 'azhzAAoNCgJ2MRIHU2VydmljZRJtCiEKBHN2YzISABoAIgAqADIAOABCAFoLCgNhcHASBHN2YzISRAodCgc4MC04MDgwEgNUQ1AYUCIHCAAQkD8aACiA6wESCwoDYXBwEgRzdmMyGgAiCE5vZGVQb3J0OgBCAFIAWgBgAGgAGgIKABoAIgA=',
    json: {
      kind: 'Service',
      apiVersion: 'v1',
      metadata: { name: 'svc2', labels: { app: 'svc2' } },
      spec: { ports: [{ name: '80-8080', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30080 }], selector: { app: 'svc2' }, type: 'NodePort' },
      status: { loadBalancer: {} },
    },
  },
  {
    command: 'create service externalname svc4 --external-name=example.com',
    body: 'azhzAAoNCgJ2MRIHU2VydmljZRJdCiEKBHN2YzQSABoAIgAqADIAOABCAFoLCgNhcHASBHN2YzQSNBILCgNhcHASBHN2YzQaACIMRXh0ZXJuYWxOYW1lOgBCAFILZXhhbXBsZS5jb21aAGAAaAAaAgoAGgAiAA==',
    json: {
      kind: 'Service',
      apiVersion: 'v1',
      metadata: { name: 'svc4', labels: { app: 'svc4' } },
      spec: { selector: { app: 'svc4' }, type: 'ExternalName', externalName: 'example.com' },
      status: { loadBalancer: {} },
    },
  },
  {
    command: 'create service clusterip svc5 --clusterip=None',
    body: 'azhzAAoNCgJ2MRIHU2VydmljZRJTCiEKBHN2YzUSABoAIgAqADIAOABCAFoLCgNhcHASBHN2YzUSKhILCgNhcHASBHN2YzUaBE5vbmUiCUNsdXN0ZXJJUDoAQgBSAFoAYABoABoCCgAaACIA',
    json: {
      kind: 'Service',
      apiVersion: 'v1',
      metadata: { name: 'svc5', labels: { app: 'svc5' } },
      spec: { selector: { app: 'svc5' }, clusterIP: 'None', type: 'ClusterIP' },
      status: { loadBalancer: {} },
    },
  },
  {
    command: 'create priorityclass pc1 --value=1000 --description=x --preemption-policy=Never',
    body: 'azhzAAolChRzY2hlZHVsaW5nLms4cy5pby92MRINUHJpb3JpdHlDbGFzcxIkChMKA3BjMRIAGgAiACoAMgA4AEIAEOgHGAAiAXgqBU5ldmVyGgAiAA==',
    json: { kind: 'PriorityClass', apiVersion: 'scheduling.k8s.io/v1', metadata: { name: 'pc1' }, value: 1000, description: 'x', preemptionPolicy: 'Never' },
  },
];

for (const r of recorded) {
  test(`kubectl ${r.command}: decodes to what its --dry-run=client -o json prints`, () => {
    const object = decodeProtobufObject(Buffer.from(r.body, 'base64'));
    assert.deepEqual(object, r.json);
    // Key order too: the same document a JSON client would have sent.
    assert.equal(JSON.stringify(object), JSON.stringify(r.json));
  });
}

test('decodeBody hands protobuf bodies to the decoder, media type parameters and case aside', () => {
  const first = recorded[0];
  assert.ok(first !== undefined);
  assert.deepEqual(decodeBody(Buffer.from(first.body, 'base64'), 'Application/vnd.kubernetes.protobuf; charset=binary'), first.json);
});

test('the envelope names the kind with runtime.TypeMeta numbering (apiVersion 1, kind 2) and locates raw', () => {
  const raw = msg(1, str(1, 'x'));
  const body = envelope('v1', 'ConfigMap', raw);
  const e = readEnvelope(body);
  assert.equal(e.apiVersion, 'v1');
  assert.equal(e.kind, 'ConfigMap');
  assert.deepEqual(body.subarray(e.raw.start, e.raw.end), raw);
  assert.equal(e.contentEncoding, '');
  assert.equal(e.contentType, '');
});

test('an envelope without raw is an object with only its kind', () => {
  const body = Buffer.concat([Buffer.from('k8s\x00', 'latin1'), msg(1, str(1, 'v1'), str(2, 'ServiceAccount'))]);
  assert.deepEqual(decodeProtobufObject(body), { kind: 'ServiceAccount', apiVersion: 'v1', metadata: {} });
});

test('unknown envelope fields are skipped; the inner content type may name protobuf', () => {
  const body = Buffer.concat([envelope('v1', 'ServiceAccount', msg(1, str(1, 'sa')), { contentType: 'application/vnd.kubernetes.protobuf' }), num(9, 1)]);
  assert.deepEqual(decodeProtobufObject(body), { kind: 'ServiceAccount', apiVersion: 'v1', metadata: { name: 'sa' } });
});

function assertApiError(fn: () => unknown, code: number, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ApiError, `expected an ApiError, got ${String(err)}`);
    assert.equal(err.httpCode, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

test('a body without the k8s magic is a 400', () => {
  assertApiError(() => decodeProtobufObject(Buffer.from('{"kind":"ConfigMap"}')), 400, /does not start with the Kubernetes protobuf prefix/);
  assertApiError(() => decodeProtobufObject(Buffer.from('k8s')), 400, /prefix/);
  assertApiError(() => decodeProtobufObject(Buffer.alloc(0)), 400, /prefix/);
});

test('kinds the decoder does not know are a 415 that lists the accepted ones and says to send JSON', () => {
  const pattern = /only for the kinds kubectl's create generators send: ConfigMap \(v1\), Secret \(v1\), Namespace \(v1\), ServiceAccount \(v1\), Service \(v1\), PriorityClass \(scheduling\.k8s\.io\/v1\); send Deployment \(apps\/v1\) as JSON/;
  assertApiError(() => decodeProtobufObject(envelope('apps/v1', 'Deployment', Buffer.alloc(0))), 415, pattern);
  assertApiError(() => decodeProtobufObject(envelope('scheduling.k8s.io/v1beta1', 'PriorityClass', Buffer.alloc(0))), 415, /send PriorityClass \(scheduling\.k8s\.io\/v1beta1\) as JSON/);
  assertApiError(() => decodeProtobufObject(envelope('', '', Buffer.alloc(0))), 415, /send an object without a kind as JSON/);
});

test('an inner content encoding or a foreign inner content type is a 415', () => {
  assertApiError(() => decodeProtobufObject(envelope('v1', 'ConfigMap', Buffer.alloc(0), { contentEncoding: 'gzip' })), 415, /content encoding "gzip"/);
  assertApiError(() => decodeProtobufObject(envelope('v1', 'ConfigMap', Buffer.alloc(0), { contentType: 'application/json' })), 415, /wraps "application\/json"/);
});

test('an envelope field of the wrong wire type is a 400', () => {
  const body = Buffer.concat([Buffer.from('k8s\x00', 'latin1'), num(2, 1)]);
  assertApiError(() => decodeProtobufObject(body), 400, /runtime\.Unknown field 2 has wire type 0/);
});

/** Runs the decoder; it may return an object or throw a 4xx ApiError, nothing else. */
function decodeOrRefuse(body: Buffer): void {
  try {
    decodeProtobufObject(body);
  } catch (err) {
    assert.ok(err instanceof ApiError && err.isUserError, `not a 4xx ApiError for ${body.toString('base64')}: ${String(err)}`);
  }
}

test('every truncation of every recorded body decodes or is refused cleanly', () => {
  for (const r of recorded) {
    const body = Buffer.from(r.body, 'base64');
    for (let n = 0; n < body.length; n++) decodeOrRefuse(body.subarray(0, n));
  }
});

test('random byte changes to recorded bodies decode or are refused cleanly', () => {
  // A fixed-seed generator (xorshift32) keeps a failure reproducible.
  let seed = 0x9e3779b9;
  const next = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  for (let i = 0; i < 20_000; i++) {
    const r = recorded[next() % recorded.length];
    assert.ok(r !== undefined);
    const body = Buffer.from(r.body, 'base64');
    const changes = 1 + (next() % 4);
    for (let c = 0; c < changes; c++) body[4 + (next() % (body.length - 4))] = next() & 0xff;
    decodeOrRefuse(body);
  }
});
