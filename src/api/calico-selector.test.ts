import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CalicoSelectorError, parseCalicoSelector } from './calico-selector.js';

const web = { app: 'web', tier: 'frontend', 'projectcalico.org/namespace': 'shop' };
const db = { app: 'db', tier: 'backend' };

test('operators, has, in, not in, all(), negation, precedence and parentheses', () => {
  const matches = (selector: string, labels: Record<string, string>): boolean => parseCalicoSelector(selector).matches(labels);
  assert.equal(matches("app == 'web'", web), true);
  assert.equal(matches('app == "web"', db), false);
  assert.equal(matches("app != 'web'", db), true);
  assert.equal(matches("missing != 'x'", db), true);
  assert.equal(matches('has(tier)', db), true);
  assert.equal(matches('!has(tier)', db), false);
  assert.equal(matches("app in {'web', 'api'}", web), true);
  assert.equal(matches("app not in {'web'}", web), false);
  assert.equal(matches("app not in {'web'}", {}), true);
  assert.equal(matches('all()', {}), true);
  assert.equal(matches('', {}), true);
  assert.equal(matches("app == 'db' || app == 'web' && tier == 'backend'", web), false, '&& binds tighter than ||');
  assert.equal(matches("(app == 'db' || app == 'web') && tier == 'frontend'", web), true);
  assert.equal(matches("!(app == 'web')", web), false);
  assert.equal(matches("projectcalico.org/namespace == 'shop' && has(app)", web), true);
  assert.equal(matches("tier starts with 'front'", web), true);
  assert.equal(matches("tier contains 'ack'", db), true);
  assert.equal(parseCalicoSelector("a == 'x'&&!has(b)").text, "a == 'x' && !has(b)");
});

test('malformed selectors say where and what was expected', () => {
  for (const [selector, where, what] of [
    ["app == 'web' &&", 16, /expected a label key/],
    ['app = web', 5, /unexpected "="|expected ==/],
    ["app == 'web", 8, /not closed/],
    ["app in {'a' 'b'}", 13, /expected "," or "}"/],
    ["(app == 'x'", 12, /expected "\)"/],
    ["has(app) app == 'x'", 10, /expected && or \|\|/],
  ] as const) {
    assert.throws(() => parseCalicoSelector(selector), (err: unknown) => {
      assert.ok(err instanceof CalicoSelectorError, String(err));
      assert.match(err.message, new RegExp(`at character ${where}:`), err.message);
      assert.match(err.message, what);
      return true;
    });
  }
});
