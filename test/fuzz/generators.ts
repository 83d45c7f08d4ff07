/**
 * Generators of malformed requests for the fuzz test. Each generator makes
 * requests that a correct server must refuse with a 4xx; together they cover
 * the kinds of bad input the issue lists: broken JSON and YAML, wrong
 * apiVersion/kind, bad names, oversized bodies, unknown fields under Strict,
 * patches that do not apply, garbage watch resourceVersions, bad query
 * parameters, bad paths and methods, and missing credentials.
 */

export interface FuzzCase {
  name: string;
  method: string;
  path: string;
  body?: string;
  headers?: Record<string, string>;
  token?: string | null;
}

export type Random = () => number;

/** mulberry32: a small deterministic PRNG, so a failing case can be reproduced. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(random: Random, items: readonly T[]): T => {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
};

export function vmManifest(name: string): Record<string, unknown> {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, labels: { app: 'fuzz' } },
    spec: {
      runStrategy: 'Halted',
      template: {
        metadata: { labels: { app: 'fuzz' } },
        spec: {
          domain: { cpu: { cores: 1 }, memory: { guest: '128Mi' }, devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] } },
          volumes: [{ name: 'root', containerDisk: { image: 'localhost/vireo/tiny:latest' } }],
        },
      },
    },
  };
}

const vmPath = '/apis/kubevirt.io/v1/namespaces/default/virtualmachines';
const cmPath = '/api/v1/namespaces/default/configmaps';

function randomBytes(random: Random, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(Math.floor(random() * 256));
  return s;
}

function truncate(random: Random, text: string): string {
  return text.slice(0, 1 + Math.floor(random() * (text.length - 2)));
}

const badNames = ['UPPER', 'has_underscore', '-leading', 'trailing-', 'a'.repeat(254), 'dots..double', 'spa ce', 'ünïcode', '.', '..', 'a/b', ''];
const garbageRvs = ['abc', '-1', '1.5', '0x10', '99999999999999999999', ' 1', 'null', '1e3', '%00'];

/** Each generator returns one malformed request; the test cycles through them. */
export const generators: ((random: Random, i: number) => FuzzCase)[] = [
  (random, i) => ({ name: 'truncated JSON', method: 'POST', path: vmPath, body: truncate(random, JSON.stringify(vmManifest(`t${i}`))) }),
  (random) => ({ name: 'random bytes', method: 'POST', path: cmPath, body: randomBytes(random, 1 + Math.floor(random() * 200)) }),
  (random) => ({
    name: 'broken YAML',
    method: 'POST',
    path: cmPath,
    body: pick(random, ['a: [1, 2', 'key: "unterminated', ':\n  - :\n -', '\t- tab: indent', '{a: b', '? [\n']),
    headers: { 'content-type': 'application/yaml' },
  }),
  (random, i) => ({ name: 'JSON that is not an object', method: 'POST', path: vmPath, body: pick(random, ['[]', '42', '"vm"', 'null', 'true', `[${JSON.stringify(vmManifest(`a${i}`))}]`]) }),
  (random, i) => {
    const vm = vmManifest(`k${i}`);
    const wrong = pick(random, [
      { apiVersion: 'kubevirt.io/v1', kind: 'ConfigMap' },
      { apiVersion: 'v1', kind: 'VirtualMachine' },
      { apiVersion: 'apps/v1', kind: 'VirtualMachine' },
      { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance' },
      { apiVersion: 42, kind: 'VirtualMachine' },
    ]);
    return { name: 'wrong apiVersion/kind', method: 'POST', path: vmPath, body: JSON.stringify({ ...vm, ...wrong }) };
  },
  (random) => ({ name: 'bad name', method: 'POST', path: cmPath, body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: pick(random, badNames) } }) }),
  (random, i) => {
    const vm = vmManifest(`u${i}`);
    const spec = vm.spec as Record<string, unknown>;
    spec[pick(random, ['bogus', 'runstrategy', 'Running', 'extra'])] = 'x';
    return { name: 'unknown field under Strict', method: 'POST', path: `${vmPath}?fieldValidation=Strict`, body: JSON.stringify(vm) };
  },
  (random, i) => {
    const vm = vmManifest(`ty${i}`);
    const spec = vm.spec as Record<string, unknown>;
    spec.runStrategy = pick(random, [42, true, ['Always'], { a: 1 }, 'Sometimes']);
    return { name: 'wrong type or value', method: 'POST', path: vmPath, body: JSON.stringify(vm) };
  },
  (random) => ({
    name: 'metadata of the wrong shape',
    method: 'POST',
    path: cmPath,
    body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: pick(random, [[], 'x', 5, { name: 7 }, { name: 'ok', labels: { a: 1 } }, { name: 'ok', labels: ['a'] }, { name: 'ok', finalizers: 'x' }, { name: 'ok', ownerReferences: [{}] }]) }),
  }),
  (random) => ({
    name: 'patch that does not apply',
    method: 'PATCH',
    path: '/api/v1/namespaces/default',
    body: pick(random, [
      '[{"op":"remove","path":"/spec/nope/deeper"}]',
      '[{"op":"test","path":"/metadata/name","value":"other"}]',
      '[{"op":"explode","path":"/x"}]',
      '[{"op":"add"}]',
      '{"not":"a list"}',
      '[{"op":"replace","path":"/metadata/name","value":"renamed"}]',
      '[{"op":"move","from":"/nope","path":"/x"}]',
    ]),
    headers: { 'content-type': 'application/json-patch+json' },
  }),
  (random) => ({
    name: 'patch of an unsupported type',
    method: 'PATCH',
    path: `${vmPath}/nonexistent-or-not`,
    body: '{}',
    headers: { 'content-type': pick(random, ['application/strategic-merge-patch+json', 'text/plain', 'application/xml', 'application/json']) },
  }),
  (random) => ({ name: 'merge patch that is not an object', method: 'PATCH', path: '/api/v1/namespaces/default', body: pick(random, ['[1]', '"x"', '7', '{bad json']), headers: { 'content-type': 'application/merge-patch+json' } }),
  (random) => ({ name: 'watch with a garbage resourceVersion', method: 'GET', path: `${vmPath}?watch=true&resourceVersion=${encodeURIComponent(pick(random, garbageRvs))}` }),
  (random) => ({
    name: 'bad query parameter',
    method: 'GET',
    path: `${cmPath}?${pick(random, ['limit=-1', 'limit=abc', 'labelSelector=a%20in%20(', 'labelSelector=%21%21x', 'fieldSelector=foo.bar%3D%3Dx', 'fieldSelector=a', 'continue=garbage', 'timeoutSeconds=soon', 'watch=maybe', 'fieldSelector=metadata.name%3Da%3Db%3Dc,x', 'resourceVersionMatch=Exact&resourceVersion=x', 'labelSelector=a%3Db%3Dc'])}`,
  }),
  (random) => ({ name: 'write with a bad query parameter', method: 'POST', path: `${cmPath}?${pick(random, ['dryRun=Some', 'fieldValidation=Loose', 'propagationPolicy=Sideways'])}`, body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'q' } }) }),
  (random) => ({ name: 'unknown path', method: 'GET', path: pick(random, ['/apis/nope.io/v1/things', '/api/v2', '/apis/kubevirt.io/v9/virtualmachines', '/nothing/here', '/api/v1/namespaces/default/nonexistents', '/openapi/v3/apis/nope/v1', '/apis/kubevirt.io/v1/namespaces/default/virtualmachines/x/nosuchsub']) }),
  (random) => ({ name: 'method not allowed', method: pick(random, ['PUT', 'PATCH', 'POST', 'DELETE']), path: pick(random, ['/version', '/apis', '/api', '/openapi/v3']), body: '{}' }),
  (random) => ({ name: 'missing or wrong token', method: 'GET', path: pick(random, ['/api/v1/namespaces', vmPath, '/version']), token: pick(random, [null, 'wrong', '', 'x'.repeat(64)]) }),
  (random) => ({ name: 'not found', method: pick(random, ['GET', 'DELETE']), path: `${vmPath}/does-not-exist-${Math.floor(random() * 1e6)}` }),
  (random, i) => ({
    name: 'namespace mismatch',
    method: 'POST',
    path: cmPath,
    body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `ns${i}`, namespace: pick(random, ['kube-system', 'other']) } }),
  }),
  (random) => ({ name: 'update without resourceVersion or of a missing object', method: 'PUT', path: `${vmPath}/missing-${Math.floor(random() * 1e6)}`, body: JSON.stringify(vmManifest('other-name')) }),
  (random) => ({
    name: 'bad CustomResourceDefinition',
    method: 'POST',
    path: '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
    body: JSON.stringify({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: pick(random, ['wrong', 'things.example.com', 'x.y']) },
      spec: pick(random, [{}, { group: 'example.com' }, { group: 'example.com', names: { plural: 'things', kind: 'Thing' }, scope: 'Sideways', versions: [] }]),
    }),
  }),
  (random) => ({ name: 'delete with bad options', method: 'DELETE', path: '/api/v1/namespaces/default/configmaps/x', body: pick(random, ['{"propagationPolicy":"Nope"}', '[1]', '{bad']) }),
];

/** One big body, over the 3 MiB limit (kept out of the rotation: it is costly). */
export function oversized(): FuzzCase {
  return { name: 'oversized body', method: 'POST', path: cmPath, body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'big' }, data: { x: 'y'.repeat(3 * 1024 * 1024 + 10) } }) };
}

/** Changes `count` random places in a copy of `obj`: deletes a field, swaps its type, or adds an unknown one. */
export function mutateObject(obj: Record<string, unknown>, random: Random, count: number): unknown {
  const copy = structuredClone(obj) as unknown;
  for (let n = 0; n < count; n++) {
    const paths: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) {
        node.forEach((v, i) => {
          paths.push({ parent: node, key: i });
          walk(v);
        });
      }
      else if (typeof node === 'object' && node !== null) {
        for (const [k, v] of Object.entries(node)) {
          paths.push({ parent: node as Record<string, unknown>, key: k });
          walk(v);
        }
      }
    };
    walk(copy);
    const target = pick(random, paths);
    const replacement = pick(random, [null, 0, -1, 1.5, '', 'x', true, [], {}, [1, 'a'], { unknown: 1 }, 'z'.repeat(300)]);
    if (Array.isArray(target.parent)) target.parent[target.key as number] = replacement;
    else if (random() < 0.2) delete target.parent[target.key as string];
    else target.parent[target.key as string] = replacement;
  }
  return copy;
}
