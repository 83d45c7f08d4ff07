import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import { crdToResourceDef, defaultCustomResourceDefinition, establishCustomResourceDefinition } from './crd.js';
import { validateCustomResourceDefinition } from './crd-validation.js';

/** A user CRD as the Kubernetes documentation writes it. */
function crontabs(): KObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'crontabs.stable.example.com' },
    spec: {
      group: 'stable.example.com',
      scope: 'Namespaced',
      names: { plural: 'crontabs', kind: 'CronTab', shortNames: ['ct'] },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { cronSpec: { type: 'string' }, replicas: { type: 'integer' } } } } } },
          additionalPrinterColumns: [
            { name: 'Spec', type: 'string', jsonPath: '.spec.cronSpec', description: 'The cron spec' },
            { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas', priority: 1 },
          ],
          subresources: { status: {}, scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas' } },
        },
        { name: 'v1beta1', served: true, storage: false, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } },
        { name: 'v1alpha1', served: false, storage: false, schema: { openAPIV3Schema: { type: 'object' } } },
      ],
    },
  };
}

function withSpec(change: (spec: Record<string, unknown>) => void): KObject {
  const c = defaultCustomResourceDefinition(crontabs());
  const spec = c['spec'];
  assert.ok(typeof spec === 'object' && spec !== null && !Array.isArray(spec));
  change(spec as Record<string, unknown>);
  return c;
}

function fields(c: KObject, old?: KObject): string[] {
  return validateCustomResourceDefinition(c, old).map((e) => e.field);
}

test('defaulting fills singular, listKind and the conversion strategy, in place', () => {
  const c = crontabs();
  assert.equal(defaultCustomResourceDefinition(c), c);
  assert.deepEqual(c['spec'] && (c['spec'] as { names: unknown }).names, { plural: 'crontabs', kind: 'CronTab', shortNames: ['ct'], singular: 'crontab', listKind: 'CronTabList' });
  assert.deepEqual((c['spec'] as { conversion: unknown }).conversion, { strategy: 'None' });
});

test('crdToResourceDef gives one definition per served version, with its columns and subresources', () => {
  const defs = crdToResourceDef(crontabs());
  assert.deepEqual(
    defs.map((d) => d.version),
    ['v1', 'v1beta1'],
  );
  const [v1, v1beta1] = defs;
  assert.ok(v1 && v1beta1);
  assert.deepEqual(
    { group: v1.group, kind: v1.kind, listKind: v1.listKind, plural: v1.plural, singular: v1.singular, namespaced: v1.namespaced, shortNames: v1.shortNames, builtin: v1.builtin },
    { group: 'stable.example.com', kind: 'CronTab', listKind: 'CronTabList', plural: 'crontabs', singular: 'crontab', namespaced: true, shortNames: ['ct'], builtin: false },
  );
  assert.deepEqual(v1.printerColumns, [
    { name: 'Spec', type: 'string', jsonPath: '.spec.cronSpec', description: 'The cron spec' },
    { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas', priority: 1 },
  ]);
  assert.deepEqual(v1.subresources, { status: true, scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas' } });
  assert.deepEqual(v1beta1.subresources, { status: false });
  assert.deepEqual(v1beta1.printerColumns, []);
  assert.equal(v1.schema?.properties?.['spec']?.properties?.['cronSpec']?.type, 'string');
  assert.equal(v1beta1.schema?.['x-kubernetes-preserve-unknown-fields'], true);
});

test('crdToResourceDef round trip: the definition gives back the CRD names it came from', () => {
  const c = defaultCustomResourceDefinition(crontabs());
  const [def] = crdToResourceDef(c);
  assert.ok(def);
  assert.deepEqual((c['spec'] as { names: unknown }).names, {
    plural: def.plural,
    singular: def.singular,
    kind: def.kind,
    listKind: def.listKind,
    shortNames: def.shortNames,
  });
  assert.equal(`${def.plural}.${def.group}`, c.metadata.name);
});

test('a cluster-scoped CRD serves cluster-scoped resources', () => {
  const [def] = crdToResourceDef(withSpec((s) => (s['scope'] = 'Cluster')));
  assert.equal(def?.namespaced, false);
});

test('establishing accepts the names, sets the conditions kubectl wait looks for, and records the storage version', () => {
  const c = establishCustomResourceDefinition(defaultCustomResourceDefinition(crontabs()), new Date('2025-01-01T00:00:00.500Z'));
  const status = c['status'] as { acceptedNames: { kind: string }; conditions: { type: string; status: string; lastTransitionTime: string }[]; storedVersions: string[] };
  assert.equal(status.acceptedNames.kind, 'CronTab');
  assert.deepEqual(
    status.conditions.map((x) => [x.type, x.status, x.lastTransitionTime]),
    [
      ['NamesAccepted', 'True', '2025-01-01T00:00:00Z'],
      ['Established', 'True', '2025-01-01T00:00:00Z'],
    ],
  );
  assert.deepEqual(status.storedVersions, ['v1']);
  // Re-establishing keeps transition times and adds a new storage version to the stored ones.
  const spec = c['spec'] as { versions: { name: string; storage: boolean }[] };
  for (const v of spec.versions) v.storage = v.name === 'v1beta1';
  establishCustomResourceDefinition(c, new Date('2025-02-01T00:00:00Z'));
  assert.equal(status.conditions[1]?.lastTransitionTime, '2025-01-01T00:00:00Z');
  assert.deepEqual((c['status'] as { storedVersions: string[] }).storedVersions, ['v1', 'v1beta1']);
});

test('a valid CRD has no errors', () => {
  assert.deepEqual(validateCustomResourceDefinition(defaultCustomResourceDefinition(crontabs())), []);
});

test('the name must be <plural>.<group>', () => {
  const c = defaultCustomResourceDefinition(crontabs());
  c.metadata.name = 'crontab.stable.example.com';
  const [error] = validateCustomResourceDefinition(c);
  assert.equal(error?.field, 'metadata.name');
  assert.match(error?.message ?? '', /must be spec\.names\.plural\+"\."\+spec\.group, here "crontabs\.stable\.example\.com"/);
});

test('group, names and scope are checked', () => {
  assert.deepEqual(fields(withSpec((s) => (s['scope'] = 'Namespace'))), ['spec.scope']);
  assert.match(validateCustomResourceDefinition(withSpec((s) => (s['scope'] = 'Namespace')))[0]?.message ?? '', /supported values: "Cluster", "Namespaced"/);
  const noDot = withSpec((s) => (s['group'] = 'example'));
  noDot.metadata.name = 'crontabs.example';
  assert.deepEqual(fields(noDot), ['spec.group']);
  assert.deepEqual(fields(withSpec((s) => ((s['names'] as Record<string, unknown>)['shortNames'] = ['Ct']))), ['spec.names.shortNames[0]']);
  assert.deepEqual(
    fields(withSpec((s) => ((s['names'] as Record<string, unknown>)['listKind'] = 'CronTab'))),
    ['spec.names.listKind'],
  );
});

test('versions: exactly one storage version, at least one served, unique names, schemas required', () => {
  const versions = (s: Record<string, unknown>): Record<string, unknown>[] => s['versions'] as Record<string, unknown>[];
  assert.deepEqual(
    fields(
      withSpec((s) => {
        for (const v of versions(s)) v['storage'] = true;
      }),
    ),
    ['spec.versions'],
  );
  assert.deepEqual(
    fields(
      withSpec((s) => {
        for (const v of versions(s)) v['served'] = false;
      }),
    ),
    ['spec.versions'],
  );
  assert.deepEqual(fields(withSpec((s) => (s['versions'] = []))), ['spec.versions']);
  assert.deepEqual(fields(withSpec((s) => ((versions(s)[1] ?? {})['name'] = 'v1'))), ['spec.versions[1].name']);
  assert.deepEqual(fields(withSpec((s) => delete (versions(s)[0] ?? {})['schema'])), ['spec.versions[0].schema.openAPIV3Schema']);
  assert.deepEqual(
    fields(withSpec((s) => ((versions(s)[2] ?? {})['schema'] = { openAPIV3Schema: { type: 'object', properties: { metadata: { type: 'object', properties: { labels: { type: 'object' } } } } } }))),
    ['spec.versions[2].schema.openAPIV3Schema.properties[metadata]'],
  );
});

test('printer columns, scale paths and conversion are checked', () => {
  const v1 = (s: Record<string, unknown>): Record<string, unknown> => (s['versions'] as Record<string, unknown>[])[0] ?? {};
  assert.deepEqual(
    fields(withSpec((s) => (v1(s)['additionalPrinterColumns'] = [{ name: 'When', type: 'time', jsonPath: '.spec.when' }, { name: '', type: 'string', jsonPath: '' }]))),
    ['spec.versions[0].additionalPrinterColumns[0].type', 'spec.versions[0].additionalPrinterColumns[1].name', 'spec.versions[0].additionalPrinterColumns[1].jsonPath'],
  );
  assert.deepEqual(
    fields(withSpec((s) => (v1(s)['subresources'] = { scale: { specReplicasPath: '.status.replicas', statusReplicasPath: '.status.replicas' } }))),
    ['spec.versions[0].subresources.scale.specReplicasPath'],
  );
  assert.deepEqual(fields(withSpec((s) => (s['conversion'] = { strategy: 'Webhook' }))), [
    'spec.conversion.webhook.clientConfig',
    'spec.conversion.webhook.conversionReviewVersions',
  ]);
  assert.deepEqual(fields(withSpec((s) => (s['conversion'] = { strategy: 'Magic' }))), ['spec.conversion.strategy']);
});

test('group and scope are immutable on update', () => {
  const old = defaultCustomResourceDefinition(crontabs());
  assert.deepEqual(fields(withSpec((s) => (s['scope'] = 'Cluster')), old), ['spec.scope']);
  assert.deepEqual(fields(defaultCustomResourceDefinition(crontabs()), old), []);
});
