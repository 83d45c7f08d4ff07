import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  generateName,
  generateNameAlphabet,
  isDNS1035Label,
  isDNS1123Label,
  isDNS1123Subdomain,
  isLabelKey,
  isLabelValue,
  nameIsDNSLabel,
  nameIsDNSSubdomain,
  validateLabels,
  validateObjectName,
} from './names.js';

const subdomainMsg =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

test('DNS-1123 subdomain accepts typical names and rejects the rest with the Kubernetes message', () => {
  for (const ok of ['vm1', 'my-vm.example.com', 'a', '0', 'a'.repeat(253)]) assert.deepEqual(isDNS1123Subdomain(ok), [], ok);
  assert.deepEqual(isDNS1123Subdomain('Foo'), [subdomainMsg]);
  assert.deepEqual(isDNS1123Subdomain('-a'), [subdomainMsg]);
  assert.deepEqual(isDNS1123Subdomain('a..b'), [subdomainMsg]);
  assert.deepEqual(isDNS1123Subdomain(''), [subdomainMsg]);
  assert.deepEqual(isDNS1123Subdomain('a'.repeat(254)), ['must be no more than 253 bytes']);
});

test('DNS-1123 label says "must not contain dots" for a valid subdomain', () => {
  assert.deepEqual(isDNS1123Label('my-ns'), []);
  assert.deepEqual(isDNS1123Label('a.b'), ['must not contain dots']);
  assert.deepEqual(isDNS1123Label('a'.repeat(64)), ['must be no more than 63 bytes']);
  assert.match(isDNS1123Label('A_b')[0] ?? '', /^a lowercase RFC 1123 label must consist of .* \(e\.g\. 'my-name', {2}or '123-abc', regex used/);
});

test('DNS-1035 label must start with a letter', () => {
  assert.deepEqual(isDNS1035Label('svc-1'), []);
  assert.match(isDNS1035Label('1svc')[0] ?? '', /^a DNS-1035 label must consist/);
});

test('label keys: optional prefix, name part rules', () => {
  for (const ok of ['app', 'kubevirt.io/domain', 'app.kubernetes.io/name', 'A_b.c-d', 'x/Y']) assert.deepEqual(isLabelKey(ok), [], ok);
  assert.deepEqual(isLabelKey('/a'), ['prefix part must be non-empty']);
  assert.deepEqual(isLabelKey('a/'), [
    'name part must be non-empty',
    // Kubernetes' RegexError really does put two spaces before each "or".
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
  ]);
  assert.match(isLabelKey('Foo.com/a')[0] ?? '', /^prefix part a lowercase RFC 1123 subdomain/);
  assert.match(isLabelKey('a/b/c')[0] ?? '', /^a valid label key must consist of .* with an optional DNS subdomain prefix and '\/' \(e\.g\. 'example\.com\/MyName'\)$/);
  assert.deepEqual(isLabelKey('a'.repeat(64)), ['name part must be no more than 63 bytes']);
});

test('label values may be empty, otherwise alphanumeric with -_. inside', () => {
  for (const ok of ['', 'v1', 'my_value', 'a.b-c']) assert.deepEqual(isLabelValue(ok), [], ok);
  assert.match(isLabelValue('-a')[0] ?? '', /^a valid label must be an empty string or consist of/);
  assert.deepEqual(isLabelValue('a'.repeat(64)), ['must be no more than 63 bytes']);
});

test('generateName prefixes may end in a dash', () => {
  assert.deepEqual(nameIsDNSSubdomain('vm-', true), []);
  assert.notDeepEqual(nameIsDNSSubdomain('vm-', false), []);
  assert.deepEqual(nameIsDNSLabel('ns-', true), []);
  assert.notDeepEqual(nameIsDNSSubdomain('Vm-', true), []);
});

test('validateObjectName reports Kubernetes field errors', () => {
  assert.deepEqual(validateObjectName({}), [
    { field: 'metadata.name', reason: 'FieldValueRequired', message: 'Required value: name or generateName is required' },
  ]);
  assert.deepEqual(validateObjectName({ generateName: 'vm-' }), []);
  assert.deepEqual(validateObjectName({ name: 'Foo' }), [
    { field: 'metadata.name', reason: 'FieldValueInvalid', message: `Invalid value: "Foo": ${subdomainMsg}` },
  ]);
  assert.equal(validateObjectName({ name: 'a.b' }, { nameFn: nameIsDNSLabel })[0]?.message, 'Invalid value: "a.b": must not contain dots');
  assert.equal(validateObjectName({ generateName: 'Vm-' })[0]?.field, 'metadata.generateName');
  // Kubernetes' maskTrailingDash drops the character before the dash, so this passes there too.
  assert.deepEqual(validateObjectName({ generateName: 'X-' }), []);
});

test('validateLabels checks keys and values', () => {
  assert.deepEqual(validateLabels({ app: 'web', 'kubevirt.io/vm': 'vm1' }), []);
  const errs = validateLabels({ 'bad key': 'ok', good: 'bad value' });
  assert.deepEqual(
    errs.map((e) => e.field),
    ['metadata.labels', 'metadata.labels'],
  );
  assert.match(errs[0]?.message ?? '', /^Invalid value: "bad key": name part must consist/);
  assert.match(errs[1]?.message ?? '', /^Invalid value: "bad value": a valid label must be/);
});

test('generateName appends five characters from the Kubernetes alphabet and keeps names <= 63', () => {
  const name = generateName('vm-');
  assert.match(name, new RegExp(`^vm-[${generateNameAlphabet}]{5}$`));
  let i = 0;
  assert.equal(generateName('x-', { randomIndex: () => i++ }), 'x-bcdfg');
  const long = generateName('a'.repeat(80));
  assert.equal(long.length, 63);
  assert.deepEqual(isDNS1123Label(long), []);
});
