import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Exposition, escapeLabelValue, vmiLabelName } from './exposition.js';
import { parseNetDev } from './vmi-stats.js';

test('label values escape backslash, double quote and newline; other characters pass', () => {
  assert.equal(escapeLabelValue('a\\b"c\nd é'), 'a\\\\b\\"c\\nd é');
});

test('VMI labels become kubernetes_vmi_label_ names with every character a label name cannot hold as _', () => {
  assert.equal(vmiLabelName('kubevirt.io/domain'), 'kubernetes_vmi_label_kubevirt_io_domain');
  assert.equal(vmiLabelName('app-name'), 'kubernetes_vmi_label_app_name');
});

test('a family is declared once, before its samples; a family without samples and non-finite values are left out', () => {
  const out = new Exposition();
  const family = { name: 'kubevirt_vmi_x_total', type: 'counter' as const, help: 'X.\nSecond line' };
  const unused = { name: 'kubevirt_vmi_y', type: 'gauge' as const, help: 'Y.' };
  out.add(family, { name: 'a' }, 1);
  out.add(unused, { name: 'a' }, undefined);
  out.add(unused, { name: 'a' }, NaN);
  out.add(family, { name: 'b"' }, 2.5);
  assert.equal(out.text(), '# HELP kubevirt_vmi_x_total X.\\nSecond line\n# TYPE kubevirt_vmi_x_total counter\nkubevirt_vmi_x_total{name="a"} 1\nkubevirt_vmi_x_total{name="b\\""} 2.5\n');
  assert.equal(new Exposition().text(), '');
});

test('/proc/<pid>/net/dev is read per interface, received and transmitted columns apart', () => {
  const text = [
    'Inter-|   Receive                                                |  Transmit',
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
    '    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0',
    '  tap0:    1234      10    1    2    0     0          0         0     5678      20    3    4    0     0       0          0',
  ].join('\n');
  assert.deepEqual(parseNetDev(text).get('tap0'), { rxBytes: 1234, rxPackets: 10, rxErrors: 1, rxDropped: 2, txBytes: 5678, txPackets: 20, txErrors: 3, txDropped: 4 });
});
