/**
 * The Prometheus rule file (monitoring/prometheus/vireo-rules.yaml) against
 * the real promtool: `promtool check rules` accepts it, and the unit tests
 * in monitoring/prometheus/tests feed input series and assert each
 * recording rule's output and which alerts fire. Each rule is also broken
 * on purpose in a copy, and the unit tests must then fail: they test the
 * expressions, not just their syntax. Every alert carries KubeVirt's labels
 * and runbook annotation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { hasBinary } from '../../src/testing/binaries.js';

const prometheusDir = fileURLToPath(new URL('../../../monitoring/prometheus/', import.meta.url));
const ruleFile = join(prometheusDir, 'vireo-rules.yaml');
const unitTests = readdirSync(join(prometheusDir, 'tests')).filter((name) => name.endsWith('.yaml')).sort();
const skip = hasBinary('promtool') ? false : 'promtool is not installed (scripts/setup installs prometheus)';

function promtool(args: string[], cwd: string): { ok: boolean; output: string } {
  const result = spawnSync('promtool', args, { cwd, encoding: 'utf8' });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
}

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function rules(): Rule[] {
  const file = parse(readFileSync(ruleFile, 'utf8')) as { groups: { rules: Rule[] }[] };
  return file.groups.flatMap((group) => group.rules);
}

test('promtool check rules accepts the rule file', { skip }, () => {
  const result = promtool(['check', 'rules', ruleFile], prometheusDir);
  assert.ok(result.ok, result.output);
});

test('the promtool unit tests of the recording rules and alerts pass', { skip }, () => {
  assert.ok(unitTests.length >= 3, `unit tests found: ${unitTests.join(', ')}`);
  const result = promtool(['test', 'rules', ...unitTests.map((name) => join('tests', name))], prometheusDir);
  assert.ok(result.ok, result.output);
});

/** A wrong expression each; the unit tests must catch every one. */
const breakages: { rule: string; from: string; to: string }[] = [
  { rule: 'node:kubevirt_vmi_phase:sum', from: 'sum by (node, phase, os,', to: 'sum by (phase, os,' },
  { rule: 'namespace:kubevirt_vm:sum', from: 'sum by (namespace) (count by (name, namespace) (kubevirt_vm_info))', to: 'count by (namespace) (kubevirt_vmi_info)' },
  { rule: 'vmi:kubevirt_vmi_vcpu:count', from: 'count by (namespace, name, node) (kubevirt_vmi_vcpu_seconds_total)', to: 'count by (namespace, name, node) (count by (namespace, name, node, state) (kubevirt_vmi_vcpu_seconds_total))' },
  { rule: 'vmi:kubevirt_vmi_memory_headroom_ratio:sum', from: 'sum by (name, namespace) (kubevirt_vmi_memory_usable_bytes) / sum', to: 'sum by (name, namespace) (kubevirt_vmi_memory_available_bytes) / sum' },
  { rule: 'vmi:kubevirt_vmi_pgmajfaults:rate5m', from: 'rate(kubevirt_vmi_memory_pgmajfault_total[5m])', to: 'increase(kubevirt_vmi_memory_pgmajfault_total[5m])' },
  { rule: 'vmi:kubevirt_vmi_swap_traffic_bytes:rate5m', from: '(rate(kubevirt_vmi_memory_swap_out_traffic_bytes[5m]))', to: '(rate(kubevirt_vmi_memory_swap_in_traffic_bytes[5m]))' },
  { rule: 'vmi:kubevirt_vmi_guest_queue_length:sum', from: 'kubevirt_vmi_guest_load_1m - on', to: 'kubevirt_vmi_guest_load_1m + on' },
  { rule: 'cluster:kubevirt_virt_controller_ready:sum', from: 'sum(kubevirt_virt_controller_ready_status{job="vireo-server"} * on (job, instance) (up{job="vireo-server"} == 1))', to: 'sum(up{job="vireo-server"})' },
  { rule: 'VirtControllerDown', from: 'expr: cluster:kubevirt_virt_controller_pods_running:count == 0\n        for: 10m', to: 'expr: cluster:kubevirt_virt_controller_pods_running:count == 0\n        for: 20m' },
  { rule: 'VirtApiRESTErrorsBurst', from: '[5m])) >= 0.8', to: '[5m])) >= 0.95' },
  { rule: 'KubeVirtVMIExcessiveMigrations', from: '[1d]))) >= 12', to: '[1d]))) >= 13' },
  { rule: 'KubeVirtVMGuestMemoryPressure', from: '(vmi:kubevirt_vmi_memory_headroom_ratio:sum < 0.05)', to: '(vmi:kubevirt_vmi_memory_headroom_ratio:sum < 0.5)' },
  { rule: 'KubeVirtVMGuestMemoryPressure (its swap arm)', from: 'vmi:kubevirt_vmi_swap_traffic_bytes:rate5m > 1048576', to: 'vmi:kubevirt_vmi_swap_traffic_bytes:rate5m > 10485760' },
  { rule: 'KubeVirtVMGuestMemoryAvailableLow', from: '(vmi:kubevirt_vmi_memory_headroom_ratio:sum < 0.03)', to: '(vmi:kubevirt_vmi_memory_headroom_ratio:sum < 0.04)' },
  { rule: 'kubevirt_vmi_memory_used_bytes', from: 'record: kubevirt_vmi_memory_used_bytes\n        expr: vmi:kubevirt_vmi_memory_used_bytes:sum', to: 'record: kubevirt_vmi_memory_used_bytes\n        expr: vmi:kubevirt_vmi_memory_available_bytes:sum' },
  { rule: 'GuestFilesystemAlmostOutOfSpace', from: 'file_system_type!~"CDFS|iso9660|', to: 'file_system_type!~"CDFS|' },
];

for (const breakage of breakages) {
  test(`the unit tests fail when ${breakage.rule} is wrong`, { skip }, () => {
    const original = readFileSync(ruleFile, 'utf8');
    assert.ok(original.includes(breakage.from), `the rule file no longer holds ${JSON.stringify(breakage.from)}`);
    const dir = mkdtempSync(join(tmpdir(), 'vireo-rules-broken-'));
    try {
      writeFileSync(join(dir, 'vireo-rules.yaml'), original.replaceAll(breakage.from, breakage.to));
      cpSync(join(prometheusDir, 'tests'), join(dir, 'tests'), { recursive: true });
      assert.ok(promtool(['check', 'rules', 'vireo-rules.yaml'], dir).ok, 'the broken copy must still be a valid rule file');
      const result = promtool(['test', 'rules', ...unitTests.map((name) => join('tests', name))], dir);
      assert.equal(result.ok, false, `the unit tests passed with ${breakage.rule} broken`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('the rule file records KubeVirt recording rules and every alert carries its labels and runbook', () => {
  const all = rules();
  const recorded = new Set(all.flatMap((rule) => (rule.record === undefined ? [] : [rule.record])));
  for (const name of ['node:kubevirt_vmi_phase:sum', 'namespace:kubevirt_vm:sum', 'vmi:kubevirt_vmi_vcpu:count', 'vmi:kubevirt_vmi_memory_used_bytes:sum',
    'vmi:kubevirt_vmi_memory_headroom_ratio:sum', 'vmi:kubevirt_vmi_pgmajfaults:rate5m', 'vmi:kubevirt_vmi_pgmajfaults:rate30m', 'vmi:kubevirt_vmi_swap_traffic_bytes:rate5m',
    'vmi:kubevirt_vmi_swap_traffic_bytes:rate30m', 'vmi:kubevirt_vmi_memory_available_bytes:sum', 'kubevirt_vmi_memory_used_bytes',
    'vmi:kubevirt_vmi_guest_queue_length:sum', 'cluster:kubevirt_virt_api_up:sum', 'cluster:kubevirt_virt_controller_up:sum', 'cluster:kubevirt_virt_handler_up:sum',
    'cluster:kubevirt_virt_controller_ready:sum', 'cluster:kubevirt_virt_controller_leading:sum']) {
    assert.ok(recorded.has(name), `${name} is not recorded`);
  }
  const alerts = all.filter((rule) => rule.alert !== undefined);
  assert.ok(alerts.length >= 20, `only ${alerts.length} alerts`);
  for (const alert of alerts) {
    const name = alert.alert ?? '';
    assert.match(alert.labels?.severity ?? '', /^(critical|warning|info)$/, `${name}: severity`);
    assert.match(alert.labels?.operator_health_impact ?? '', /^(critical|warning|none)$/, `${name}: operator_health_impact`);
    assert.equal(alert.annotations?.runbook_url, `https://kubevirt.io/monitoring/runbooks/${name}`, `${name}: runbook_url`);
    assert.ok((alert.annotations?.summary ?? '') !== '', `${name}: summary`);
  }
});
