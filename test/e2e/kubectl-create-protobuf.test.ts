/**
 * kubectl's built-in generators (`kubectl create configmap|secret|service|…`)
 * send their object as protobuf from kubectl 1.32 on. Each one must store
 * what `--dry-run=client -o json` prints for the same command, and the same
 * object a JSON client sending that output gets.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { envelope, msg, rawTag, str, varint } from '../../src/apiserver/protobuf/encode.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';
import { kubectlSuites } from './support.js';
import type { Kubectl } from './support.js';

const ns = 'generators';
const protobuf = 'application/vnd.kubernetes.protobuf';

/** The first kubectl whose generators send protobuf (1.28 to 1.31 send JSON). */
const firstProtobufMinor = 32;

interface Generator {
  /** The generator: `configmap`, `secret tls`, … */
  generator: string;
  /** Its flags; `files` holds f.txt, bin.dat, tls.crt and tls.key. */
  flags?: (files: string) => string[];
  /** The `kubectl get` argument for it. */
  resource: string;
  name: string;
  namespaced: boolean;
  /** Fields compared exactly against `--dry-run=client -o json` (paths with dots). */
  fields: string[];
}

const generators: Generator[] = [
  {
    generator: 'configmap',
    flags: (f) => ['--from-literal=a=b', '--from-literal=empty=', `--from-file=${f}/f.txt`, `--from-file=bin=${f}/bin.dat`],
    resource: 'configmap',
    name: 'cm',
    namespaced: true,
    fields: ['data', 'binaryData', 'immutable', 'metadata.labels'],
  },
  {
    generator: 'secret generic',
    flags: (f) => ['--from-literal=a=b', `--from-file=raw=${f}/bin.dat`, '--type=example.com/custom'],
    resource: 'secret',
    name: 'generic',
    namespaced: true,
    fields: ['data', 'type', 'metadata.labels'],
  },
  {
    generator: 'secret tls',
    flags: (f) => [`--cert=${f}/tls.crt`, `--key=${f}/tls.key`],
    resource: 'secret',
    name: 'tls',
    namespaced: true,
    fields: ['data', 'type', 'metadata.labels'],
  },
  {
    generator: 'secret docker-registry',
    flags: () => ['--docker-server=registry.example.com', '--docker-username=u', '--docker-password=p', '--docker-email=u@example.com'],
    resource: 'secret',
    name: 'registry',
    namespaced: true,
    fields: ['data', 'type', 'metadata.labels'],
  },
  // The server adds the namespace's `kubernetes` finalizer to spec; the JSON-twin comparison covers spec.
  { generator: 'namespace', resource: 'namespace', name: 'created-ns', namespaced: false, fields: ['metadata.labels'] },
  { generator: 'serviceaccount', resource: 'serviceaccount', name: 'robot', namespaced: true, fields: ['secrets', 'imagePullSecrets', 'metadata.labels'] },
  // The server adds a Service's defaults and allocations (cluster IP, node ports) to spec, as kube-apiserver does: compare what kubectl set.
  { generator: 'service clusterip', flags: () => ['--tcp=80:8080'], resource: 'service', name: 'web', namespaced: true, fields: ['spec.ports', 'spec.selector', 'spec.type', 'metadata.labels'] },
  { generator: 'service clusterip', flags: () => ['--clusterip=None'], resource: 'service', name: 'headless', namespaced: true, fields: ['spec.clusterIP', 'spec.ports', 'spec.selector', 'spec.type', 'metadata.labels'] },
  {
    generator: 'service nodeport',
    flags: () => ['--tcp=80:8080', '--node-port=30080'],
    resource: 'service',
    name: 'node',
    namespaced: true,
    fields: ['spec.ports', 'spec.selector', 'spec.type', 'metadata.labels'],
  },
  { generator: 'service loadbalancer', flags: () => ['--tcp=80:8080'], resource: 'service', name: 'lb', namespaced: true, fields: ['spec.selector', 'spec.type', 'metadata.labels'] },
  {
    generator: 'service externalname',
    flags: () => ['--external-name=example.com'],
    resource: 'service',
    name: 'ext',
    namespaced: true,
    fields: ['spec.externalName', 'spec.type', 'metadata.labels'],
  },
  {
    generator: 'priorityclass',
    flags: () => ['--value=1000', '--description=x', '--preemption-policy=Never'],
    resource: 'priorityclass',
    name: 'high',
    namespaced: false,
    fields: ['value', 'description', 'preemptionPolicy', 'globalDefault', 'metadata.labels'],
  },
];

type Json = Record<string, unknown>;

function at(object: Json, path: string): unknown {
  let value: unknown = object;
  for (const key of path.split('.')) value = typeof value === 'object' && value !== null ? (value as Json)[key] : undefined;
  return value;
}

/** The object less what differs between any two creations: identity, timestamps, versions, a Service's allocations. */
function content(object: Json): Json {
  const metadata = { ...(object.metadata as Json) };
  for (const key of ['name', 'uid', 'resourceVersion', 'creationTimestamp', 'managedFields']) delete metadata[key];
  return object.kind === 'Service' ? { ...withoutAllocations(object), metadata } : { ...object, metadata };
}

/** A Service without its cluster IPs and node ports: each Service gets its own. */
function withoutAllocations(service: Json): Json {
  const { clusterIP: _ip, clusterIPs: _ips, ...spec } = (service.spec ?? {}) as Json;
  const keepNone = (service.spec as Json | undefined)?.clusterIP === 'None' ? { clusterIP: 'None' } : {};
  const ports = Array.isArray(spec.ports) ? (spec.ports as Json[]).map(({ nodePort: _np, ...port }) => port) : undefined;
  return { ...service, spec: { ...spec, ...keepNone, ...(ports === undefined ? {} : { ports }) } };
}

/** The request Content-Type of the POST in kubectl's `-v=8` log (1.28 and 1.33 formats alike list it after the POST line). */
function postedContentType(stderr: string): string | undefined {
  return /POST[\s\S]*?Content-Type: ([^\s,]+)/.exec(stderr)?.[1];
}

const run = promisify(execFile);

kubectlSuites('kubectl create generators (protobuf bodies)', (k: Kubectl) => {
  let files = '';
  before(async () => {
    files = mkdtempSync(join(tmpdir(), 'vireo-e2e-generators-'));
    writeFileSync(join(files, 'f.txt'), 'hello\n');
    writeFileSync(join(files, 'bin.dat'), Buffer.from([0, 1, 0xfe, 0xff]));
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(files, 'tls.key'), '-out', join(files, 'tls.crt'), '-days', '1', '-subj', '/CN=example.com']);
    await k.namespace(ns);
  });
  after(() => {
    rmSync(files, { recursive: true, force: true });
  });

  for (const g of generators) {
    test(`kubectl create ${g.generator} ${g.name}`, async () => {
      const scope = g.namespaced ? ['-n', ns] : [];
      const args = ['create', ...g.generator.split(' '), g.name, ...(g.flags?.(files) ?? []), ...scope];
      const expected = JSON.parse(await k.ok([...args, '--dry-run=client', '-o', 'json'])) as Json;

      const created = await k.run([...args, '-v=8']);
      assert.equal(created.code, 0, `kubectl ${args.join(' ')} failed: ${created.stderr.split('\n').filter((l) => !/^I\d{4} /.test(l)).join('\n')}`);
      assert.match(created.stdout, new RegExp(`/${g.name} created\\n$`));
      assert.equal(postedContentType(created.stderr), k.minor >= firstProtobufMinor ? protobuf : 'application/json', 'the body kubectl sent');

      const stored = await k.json([g.resource, g.name, ...scope]);
      for (const path of g.fields) assert.deepEqual(at(stored, path), at(expected, path), `${path} of the stored ${g.resource} differs from --dry-run=client -o json`);

      // The same object sent as JSON (as `create -f` sends it) must be stored the same way.
      const twin = `${g.name}-json`;
      // A node port belongs to one Service: the twin gets its own.
      const json = { ...(expected.kind === 'Service' ? withoutAllocations(expected) : expected), metadata: { ...(expected.metadata as Json), name: twin } };
      await k.ok(['create', '-f', '-', ...scope], { stdin: JSON.stringify(json) });
      assert.deepEqual(content(stored), content(await k.json([g.resource, twin, ...scope])));
    });
  }
});

describe('protobuf bodies the server does not decode', () => {
  let server: TestServer | undefined;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server?.stop());

  async function post(body: Buffer): Promise<{ status: number; message: string }> {
    assert.ok(server !== undefined);
    const res = await server.fetch('POST', '/api/v1/namespaces/default/configmaps', { body, headers: { 'content-type': protobuf, accept: `${protobuf},application/json` } });
    const status = res.json() as { message?: unknown };
    return { status: res.status, message: String(status.message) };
  }

  test('a kind outside the generators is a 415 that says to send JSON', async () => {
    const r = await post(envelope('v1', 'Pod', msg(1, str(1, 'p'))));
    assert.equal(r.status, 415);
    assert.match(r.message, /accepts protobuf \(application\/vnd\.kubernetes\.protobuf\) only for the kinds kubectl's create generators send: .*; send Pod \(v1\) as JSON/);
  });

  test('malformed protobuf is a 400 that says where', async () => {
    // runtime.Unknown's raw (field 2) declares 100 bytes and has 3.
    const r = await post(Buffer.concat([Buffer.from('k8s\x00', 'latin1'), rawTag(2, 2), varint(100), Buffer.from('abc')]));
    assert.equal(r.status, 400);
    assert.equal(r.message, 'the protobuf request body is malformed: a length of 100 bytes runs past the end of its message (at byte 5); send the object as JSON instead if your client can');
  });
});
