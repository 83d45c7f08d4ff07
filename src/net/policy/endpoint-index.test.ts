import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelSelectorFromObject } from '../../api/labels.js';
import { EndpointIndex } from './endpoint-index.js';
import type { PolicyEndpoint } from './model.js';

function endpoint(namespace: string, name: string, labels: Record<string, string>): PolicyEndpoint {
  return { namespace, name, labels, ips: [], hostInterface: '', local: false };
}

const endpoints = [endpoint('a', 'web', { app: 'web', tier: 'front' }), endpoint('b', 'web', { app: 'web' }), endpoint('a', 'db', { app: 'db', tier: 'back' }), endpoint('a', 'bare', {})];
const index = new EndpointIndex(endpoints);
const names = (list: readonly PolicyEndpoint[]): string[] => list.map((e) => `${e.namespace}/${e.name}`);

test('candidates of an equality or In selector: only the endpoints carrying a value, in cluster order, per namespace when asked', () => {
  assert.deepEqual(names(index.candidates(labelSelectorFromObject({ matchLabels: { app: 'web' } }), undefined)), ['a/web', 'b/web']);
  assert.deepEqual(names(index.candidates(labelSelectorFromObject({ matchLabels: { app: 'web' } }), 'b')), ['b/web']);
  assert.deepEqual(names(index.candidates(labelSelectorFromObject({ matchExpressions: [{ key: 'app', operator: 'In', values: ['db', 'web'] }] }), 'a')), ['a/web', 'a/db']);
  // The narrowest requirement is used: tier=back has one endpoint.
  assert.deepEqual(names(index.candidates(labelSelectorFromObject({ matchLabels: { app: 'db', tier: 'back' } }), undefined)), ['a/db']);
});

test('selectors without an equality (empty, NotIn, Exists) get every endpoint of the scope: the caller still matches them', () => {
  assert.deepEqual(names(index.candidates(labelSelectorFromObject({}), 'a')), ['a/web', 'a/db', 'a/bare']);
  assert.deepEqual(names(index.candidates(labelSelectorFromObject({ matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] }), undefined)).length, 4);
  assert.deepEqual(names(index.inNamespace('c')), []);
});
