import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeRanges, parseAddressOrCidr, rangeElement, subtractRanges } from './ip-ranges.js';

function range(text: string): NonNullable<ReturnType<typeof parseAddressOrCidr>> {
  const parsed = parseAddressOrCidr(text);
  assert.ok(parsed, text);
  return parsed;
}

test('CIDRs and addresses of both families', () => {
  assert.equal(rangeElement(range('10.1.2.3/16')), '10.1.0.0-10.1.255.255');
  assert.equal(rangeElement(range('10.1.2.3')), '10.1.2.3');
  assert.equal(rangeElement(range('fd00::1:0/112')), 'fd00:0:0:0:0:0:1:0-fd00:0:0:0:0:0:1:ffff');
  assert.equal(rangeElement(range('::ffff:10.0.0.1')), '0:0:0:0:0:ffff:a00:1');
  assert.equal(parseAddressOrCidr('10.0.0.0/33'), undefined);
  assert.equal(parseAddressOrCidr('10.0.0/8'), undefined);
  assert.equal(parseAddressOrCidr('nonsense'), undefined);
});

test('except cuts holes; merging joins overlaps and neighbours', () => {
  const cut = subtractRanges([range('10.0.0.0/24')], [range('10.0.0.128/25'), range('10.0.0.10')]);
  assert.deepEqual(cut.map(rangeElement), ['10.0.0.0-10.0.0.9', '10.0.0.11-10.0.0.127']);
  const merged = mergeRanges([range('10.0.0.5'), range('10.0.0.0/30'), range('10.0.0.4'), range('fd00::1'), range('10.0.1.0/24')]);
  assert.deepEqual(merged.map(rangeElement), ['10.0.0.0-10.0.0.5', '10.0.1.0-10.0.1.255', 'fd00:0:0:0:0:0:0:1']);
});
