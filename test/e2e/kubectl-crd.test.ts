/**
 * A user's CustomResourceDefinition, registered and used through kubectl:
 * established condition, short name, categories, printer columns, status
 * subresource, defaulting, enum and unknown-field validation, and cleanup
 * of instances when the CRD goes.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { kubectlSuites, parseTable, rowNamed, youngAge } from './support.js';

const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.e2e.vireo.dev
spec:
  group: e2e.vireo.dev
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wdg]
    categories: [all, gadgets]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - {name: Size, type: string, jsonPath: .spec.size}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Phase, type: string, jsonPath: .status.phase}
    - {name: Verbose, type: string, jsonPath: .spec.size, priority: 1}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size:
                type: string
                enum: [small, medium, large]
              replicas:
                type: integer
                default: 3
          status:
            type: object
            properties:
              phase: {type: string}
`;

function widget(name: string, spec: string): string {
  return `apiVersion: e2e.vireo.dev/v1\nkind: Widget\nmetadata:\n  name: ${name}\nspec:\n${spec}`;
}

kubectlSuites('kubectl with a user CRD', (k) => {
  const ns = 'crds';
  before(() => k.namespace(ns));

  test('apply the CRD and wait for it to be established', async () => {
    assert.equal(await k.apply(crd), 'customresourcedefinition.apiextensions.k8s.io/widgets.e2e.vireo.dev created\n');
    const r = await k.ok(['wait', '--for', 'condition=established', 'crd/widgets.e2e.vireo.dev', '--timeout=30s']);
    assert.equal(r, 'customresourcedefinition.apiextensions.k8s.io/widgets.e2e.vireo.dev condition met\n');
  });

  test('an instance gets its default, and get by short name shows the printer columns', async () => {
    assert.equal(await k.apply(widget('w1', '  size: small\n'), '-n', ns), 'widget.e2e.vireo.dev/w1 created\n');
    assert.equal(await k.jsonpath(['widget', 'w1', '-n', ns], '{.spec.replicas}'), '3');
    const table = parseTable(await k.ok(['get', 'wdg', '-n', ns]));
    assert.deepEqual(table.header, ['NAME', 'SIZE', 'REPLICAS', 'PHASE', 'AGE']);
    const row = rowNamed(table, 'w1');
    assert.match(row.AGE ?? '', youngAge);
    assert.deepEqual({ ...row, AGE: '' }, { NAME: 'w1', SIZE: 'small', REPLICAS: '3', PHASE: '', AGE: '' });
    const wide = parseTable(await k.ok(['get', 'wdg', '-n', ns, '-o', 'wide']));
    assert.deepEqual(wide.header, ['NAME', 'SIZE', 'REPLICAS', 'PHASE', 'VERBOSE', 'AGE']);
  });

  test('status goes through the status subresource only', async () => {
    await k.ok(['patch', 'wdg', 'w1', '-n', ns, '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Ready"}}']);
    assert.equal(await k.ok(['patch', 'wdg', 'w1', '-n', ns, '--type=merge', '-p', '{"status":{"phase":"Hacked"}}']), 'widget.e2e.vireo.dev/w1 patched (no change)\n');
    assert.equal(rowNamed(parseTable(await k.ok(['get', 'wdg', '-n', ns])), 'w1').PHASE, 'Ready');
  });

  test('apply rejects an unknown field with its path (strict field validation)', async () => {
    const r = await k.fails(['apply', '-n', ns, '-f', '-'], { stdin: widget('w2', '  size: small\n  colour: red\n') });
    assert.equal(r.stderr, 'Error from server (BadRequest): error when creating "STDIN": strict decoding error: unknown field "spec.colour"\n');
  });

  test('an invalid enum value is rejected with a 422 naming the field and the allowed values', async () => {
    const r = await k.fails(['apply', '-n', ns, '-f', '-', '-v=6'], { stdin: widget('w3', '  size: huge\n') });
    assert.match(r.stderr, /POST https:\/\/\S+\/apis\/e2e\.vireo\.dev\/v1\/namespaces\/crds\/widgets\S* 422 Unprocessable Entity|verb="POST" url="https:\/\/\S+\/apis\/e2e\.vireo\.dev\/v1\/namespaces\/crds\/widgets\S*" status="422 Unprocessable Entity"/);
    assert.match(r.stderr, /^The Widget "w3" is invalid: spec\.size: Unsupported value: "huge": supported values: "small", "medium", "large"$/m);
    assert.match((await k.fails(['get', 'wdg', 'w3', '-n', ns])).stderr, /NotFound/);
  });

  test('get all and get <category> include the custom resource', async () => {
    const all = await k.ok(['get', 'all', '-n', ns, '-o', 'name']);
    assert.equal(all, 'widget.e2e.vireo.dev/w1\n');
    assert.equal(await k.ok(['get', 'gadgets', '-n', ns, '-o', 'name']), 'widget.e2e.vireo.dev/w1\n');
  });

  test('deleting the CRD deletes its instances', async () => {
    const prefix = `/registry/e2e.vireo.dev/widgets/${ns}/`;
    assert.deepEqual((await k.test.store.list(prefix)).items.map((i) => i.key), [`${prefix}w1`]);
    assert.equal(await k.ok(['delete', 'crd', 'widgets.e2e.vireo.dev', '--wait=true', '--timeout=30s']), 'customresourcedefinition.apiextensions.k8s.io "widgets.e2e.vireo.dev" deleted\n');
    assert.deepEqual((await k.test.store.list(prefix)).items, []);
    const r = await k.fails(['get', 'wdg', '-n', ns]);
    // kubectl still has the resource in its discovery cache, so it lists and gets the server's 404.
    assert.match(r.stderr, /^Error from server \(NotFound\): Unable to list "e2e\.vireo\.dev\/v1, Resource=widgets": the server could not find the requested resource/);
  });
});
