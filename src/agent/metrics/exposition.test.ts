import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Exposition, escapeLabelValue, vmiLabelName } from './exposition.js';
import { cpuListSize, parseNetDev, schedWaitNs } from './vmi-stats.js';

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

test('a task\'s scheduler wait is read in ns from /proc/.../sched, with or without the se.statistics prefix, and is absent without schedstats', () => {
  const newer = 'qemu-system-x86 (4242, #threads: 5)\n-------\nse.exec_start : 123.000000\nsum_sleep_runtime : 10.000000\nwait_start : 0.000000\nwait_sum : 1234.567891\nwait_count : 42\n';
  assert.equal(schedWaitNs(newer), 1_234_567_891);
  assert.equal(schedWaitNs('se.statistics.wait_sum                 :             2.500000\n'), 2_500_000);
  // A kernel without CONFIG_SCHEDSTATS (or with kernel.sched_schedstats=0) prints no wait_sum.
  assert.equal(schedWaitNs('se.exec_start : 75292453.038220\nse.sum_exec_runtime : 0.507427\nnr_switches : 0\n'), undefined);
  assert.equal(schedWaitNs(undefined), undefined);
});

test('a CPU list counts its CPUs and ranges', () => {
  assert.equal(cpuListSize('0-1'), 2);
  assert.equal(cpuListSize('0-3,8,10-11'), 7);
  assert.equal(cpuListSize('5'), 1);
});
