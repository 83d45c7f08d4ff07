import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelsOf } from './request-metrics.js';
import { parseRequestPath } from './request-info.js';

const verb = (method: string, path: string, upgrade = false): string => {
  const url = new URL(path, 'https://vireo.invalid');
  return labelsOf(method, url, parseRequestPath(url.pathname), upgrade).verb;
};

test('verbs are kube-apiserver\'s: LIST and GET, WATCH by parameter or prefix, DELETECOLLECTION, CONNECT for upgrades', () => {
  assert.equal(verb('GET', '/apis/kubevirt.io/v1/namespaces/ns/virtualmachines'), 'LIST');
  assert.equal(verb('GET', '/apis/kubevirt.io/v1/namespaces/ns/virtualmachines/vm'), 'GET');
  assert.equal(verb('GET', '/apis/kubevirt.io/v1/virtualmachines?watch=true'), 'WATCH');
  assert.equal(verb('GET', '/api/v1/watch/namespaces/ns/pods'), 'WATCH');
  assert.equal(verb('DELETE', '/api/v1/namespaces/ns/configmaps'), 'DELETECOLLECTION');
  assert.equal(verb('DELETE', '/api/v1/namespaces/ns/configmaps/c'), 'DELETE');
  assert.equal(verb('GET', '/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/v/console', true), 'CONNECT');
});

test('scope, subresource and dry run as kube labels them; non-resource paths by their first segment, unknown ones blank', () => {
  const labels = (method: string, path: string): Record<string, string> => {
    const url = new URL(path, 'https://vireo.invalid');
    return labelsOf(method, url, parseRequestPath(url.pathname), false);
  };
  assert.deepEqual(labels('PUT', '/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances/v/status?dryRun=All'), {
    verb: 'PUT', dry_run: 'All', group: 'kubevirt.io', version: 'v1', resource: 'virtualmachineinstances', subresource: 'status', scope: 'resource', component: 'apiserver',
  });
  assert.equal(labels('GET', '/api/v1/nodes').scope, 'cluster');
  assert.equal(labels('GET', '/api/v1/namespaces/ns/pods').scope, 'namespace');
  assert.equal(labels('GET', '/apis').subresource, '/apis');
  assert.equal(labels('GET', '/openapi/v3/apis/kubevirt.io/v1').subresource, '/openapi');
  assert.equal(labels('GET', '/made-up/path').subresource, '');
});
