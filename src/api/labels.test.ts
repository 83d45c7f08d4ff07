import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from './errors.js';
import { everything, labelSelectorFromObject, nothing, parseLabelSelector } from './labels.js';

const web = { app: 'web', tier: 'frontend', 'kubevirt.io/size': 'small' };
const db = { app: 'db', tier: 'backend', gpu: '' };

function badRequestMatching(pattern: RegExp): (err: unknown) => boolean {
  return (err) => err instanceof ApiError && err.reason === 'BadRequest' && err.httpCode === 400 && pattern.test(err.message);
}

test('equality operators', () => {
  assert.equal(parseLabelSelector('app=web').matches(web), true);
  assert.equal(parseLabelSelector('app==web').matches(web), true);
  assert.equal(parseLabelSelector('app=web').matches(db), false);
  assert.equal(parseLabelSelector('app!=web').matches(db), true);
  assert.equal(parseLabelSelector('app!=web').matches(web), false);
  // != also matches objects without the label at all
  assert.equal(parseLabelSelector('missing!=x').matches(web), true);
  assert.equal(parseLabelSelector('kubevirt.io/size=small').matches(web), true);
});

test('set operators, existence and AND', () => {
  assert.equal(parseLabelSelector('app in (web,api)').matches(web), true);
  assert.equal(parseLabelSelector('app in (api)').matches(web), false);
  assert.equal(parseLabelSelector('app notin (web)').matches(db), true);
  assert.equal(parseLabelSelector('app notin (web)').matches({}), true);
  assert.equal(parseLabelSelector('gpu').matches(db), true);
  assert.equal(parseLabelSelector('gpu').matches(web), false);
  assert.equal(parseLabelSelector('!gpu').matches(web), true);
  assert.equal(parseLabelSelector('!gpu').matches(db), false);
  assert.equal(parseLabelSelector('app=db,tier=backend,gpu').matches(db), true);
  assert.equal(parseLabelSelector('app=db,tier=frontend').matches(db), false);
  assert.equal(parseLabelSelector('gpu=').matches(db), true);
  assert.equal(parseLabelSelector('gpu in ()').matches(db), true);
  assert.equal(parseLabelSelector('app').matches(undefined), false);
  assert.equal(parseLabelSelector('!app').matches(undefined), true);
});

test('whitespace is tolerated around every token', () => {
  const s = parseLabelSelector('  app  in ( web , api ) ,  tier != backend , ! gpu ');
  assert.equal(s.matches(web), true);
  assert.equal(s.toString(), 'app in (api,web),!gpu,tier!=backend');
});

test('in/notin may be used as keys and values', () => {
  assert.equal(parseLabelSelector('in in (in,notin)').matches({ in: 'notin' }), true);
});

test('numeric comparisons', () => {
  assert.equal(parseLabelSelector('cores>2').matches({ cores: '4' }), true);
  assert.equal(parseLabelSelector('cores<2').matches({ cores: '4' }), false);
  assert.equal(parseLabelSelector('cores>2').matches({ cores: 'many' }), false);
  assert.equal(parseLabelSelector('cores>2').matches({}), false);
  assert.throws(() => parseLabelSelector('cores>x'), badRequestMatching(/must be an integer/));
});

test('empty selector matches everything; canonical string is sorted', () => {
  assert.equal(parseLabelSelector(''), everything);
  assert.equal(parseLabelSelector('   ').matchesEverything, true);
  assert.equal(everything.matches(undefined), true);
  assert.equal(parseLabelSelector('b=1,a in (y,x,x)').toString(), 'a in (x,y),b=1');
});

test('syntax errors are 400s that say what was found, where, and the grammar', () => {
  assert.throws(() => parseLabelSelector('app=web,'), badRequestMatching(/found end of string at position 8 .* expected: identifier after ','.*'env in \(prod,staging\)'/));
  assert.throws(() => parseLabelSelector('app in web'), badRequestMatching(/found 'web' at position 7 .* expected: '\('/));
  assert.throws(() => parseLabelSelector('app in (a b)'), badRequestMatching(/found 'b' .* expected: ',' or '\)'/));
  assert.throws(() => parseLabelSelector('app in (a'), badRequestMatching(/found end of string/));
  assert.throws(() => parseLabelSelector('app web'), badRequestMatching(/found 'web' .* expected: =, ==, !=, in, notin, >, </));
  assert.throws(() => parseLabelSelector(',app'), badRequestMatching(/found ',' at position 0/));
  assert.throws(() => parseLabelSelector('app=(x)'), badRequestMatching(/found '\('/));
  assert.throws(() => parseLabelSelector('!app=x'), badRequestMatching(/found '='/));
  assert.throws(() => parseLabelSelector('app=a=b'), badRequestMatching(/found '='/));
});

test('keys and values are validated like Kubernetes label syntax', () => {
  assert.throws(() => parseLabelSelector('-app=x'), badRequestMatching(/key "-app": name part must consist of alphanumeric/));
  assert.throws(() => parseLabelSelector('app=-x'), badRequestMatching(/value "-x" for key "app": a valid label must be an empty string/));
  assert.throws(() => parseLabelSelector(`app=${'a'.repeat(64)}`), badRequestMatching(/must be no more than 63 bytes/));
  assert.throws(() => parseLabelSelector('a/b/c'), badRequestMatching(/a valid label key/));
});

test('metav1.LabelSelector objects', () => {
  assert.equal(labelSelectorFromObject(undefined), nothing);
  assert.equal(labelSelectorFromObject(null).matches(web), false);
  assert.equal(labelSelectorFromObject({}).matches(web), true);
  const s = labelSelectorFromObject({
    matchLabels: { tier: 'frontend' },
    matchExpressions: [
      { key: 'app', operator: 'In', values: ['web', 'api'] },
      { key: 'gpu', operator: 'DoesNotExist' },
      { key: 'kubevirt.io/size', operator: 'Exists', values: [] },
      { key: 'app', operator: 'NotIn', values: ['db'] },
    ],
  });
  assert.equal(s.matches(web), true);
  assert.equal(s.matches(db), false);
  assert.equal(s.toString(), 'app in (api,web),app notin (db),!gpu,kubevirt.io/size,tier=frontend');
});

test('invalid metav1.LabelSelector objects are 400s', () => {
  assert.throws(
    () => labelSelectorFromObject({ matchExpressions: [{ key: 'a', operator: 'Equals', values: ['x'] }] }),
    badRequestMatching(/matchExpressions\[0\]\.operator: "Equals" is not a valid label selector operator; use In, NotIn, Exists or DoesNotExist/),
  );
  assert.throws(
    () => labelSelectorFromObject({ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }),
    badRequestMatching(/values set can't be empty/),
  );
  assert.throws(
    () => labelSelectorFromObject({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }),
    badRequestMatching(/values set must be empty for exists and does not exist/),
  );
  assert.throws(() => labelSelectorFromObject({ matchLabels: { a: 'b c' } }), badRequestMatching(/value "b c"/));
});
