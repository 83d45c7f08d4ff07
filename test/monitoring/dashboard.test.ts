/**
 * The Grafana dashboard (monitoring/grafana/vireo-vms.json): every panel
 * and variable queries through the `${datasource}` variable, every PromQL
 * expression in it parses (a real Prometheus answers each as an instant
 * query, with Grafana's variables filled in), and it names only metrics
 * Vireo exports (KubeVirt's catalogue) or the rule file records.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { hasBinary } from '../../src/testing/binaries.js';
import { startPrometheus } from '../../src/testing/prometheus.js';

const monitoringDir = new URL('../../../monitoring/', import.meta.url);
const dashboard = JSON.parse(readFileSync(fileURLToPath(new URL('grafana/vireo-vms.json', monitoringDir)), 'utf8')) as Dashboard;
const ruleFile = parse(readFileSync(fileURLToPath(new URL('prometheus/vireo-rules.yaml', monitoringDir)), 'utf8')) as { groups: { rules: { record?: string }[] }[] };
const skip = hasBinary('prometheus') ? false : 'prometheus is not installed (scripts/setup installs it)';

interface Target { expr: string; datasource?: { uid?: string } }
interface Panel { type: string; title: string; datasource?: { uid?: string }; targets?: Target[] }
interface Variable { name: string; type: string; query: string | { query: string }; datasource?: { uid?: string } }
interface Dashboard { panels: Panel[]; templating: { list: Variable[] } }

/** KubeVirt's metric families Vireo's components export (the agents' per-VMI ones and the server's). */
const exported = new Set([
  'kubevirt_vmi_cpu_usage_seconds_total', 'kubevirt_vmi_cpu_user_usage_seconds_total', 'kubevirt_vmi_cpu_system_usage_seconds_total',
  'kubevirt_vmi_vcpu_seconds_total', 'kubevirt_vmi_vcpu_wait_seconds_total', 'kubevirt_vmi_vcpu_delay_seconds_total',
  'kubevirt_vmi_memory_resident_bytes', 'kubevirt_vmi_memory_available_bytes', 'kubevirt_vmi_memory_unused_bytes', 'kubevirt_vmi_memory_cached_bytes',
  'kubevirt_vmi_memory_usable_bytes', 'kubevirt_vmi_memory_domain_bytes', 'kubevirt_vmi_memory_actual_balloon_bytes',
  'kubevirt_vmi_memory_swap_in_traffic_bytes', 'kubevirt_vmi_memory_swap_out_traffic_bytes', 'kubevirt_vmi_memory_pgmajfault_total', 'kubevirt_vmi_memory_pgminfault_total',
  'kubevirt_vmi_network_receive_bytes_total', 'kubevirt_vmi_network_transmit_bytes_total', 'kubevirt_vmi_network_receive_packets_total', 'kubevirt_vmi_network_transmit_packets_total',
  'kubevirt_vmi_network_receive_errors_total', 'kubevirt_vmi_network_transmit_errors_total', 'kubevirt_vmi_network_receive_packets_dropped_total', 'kubevirt_vmi_network_transmit_packets_dropped_total',
  'kubevirt_vmi_storage_iops_read_total', 'kubevirt_vmi_storage_iops_write_total', 'kubevirt_vmi_storage_read_traffic_bytes_total', 'kubevirt_vmi_storage_write_traffic_bytes_total',
  'kubevirt_vmi_storage_read_times_seconds_total', 'kubevirt_vmi_storage_write_times_seconds_total', 'kubevirt_vmi_storage_flush_requests_total', 'kubevirt_vmi_storage_flush_times_seconds_total',
  'kubevirt_vmi_filesystem_capacity_bytes', 'kubevirt_vmi_filesystem_used_bytes', 'kubevirt_vmi_guest_load_1m', 'kubevirt_vmi_guest_load_5m', 'kubevirt_vmi_guest_load_15m',
  'kubevirt_vmi_migration_data_processed_bytes', 'kubevirt_vmi_migration_data_remaining_bytes', 'kubevirt_vmi_migration_dirty_memory_rate_bytes', 'kubevirt_vmi_migration_memory_transfer_rate_bytes',
  'kubevirt_vmi_migrations_in_pending_phase', 'kubevirt_vmi_migrations_in_scheduling_phase', 'kubevirt_vmi_migrations_in_running_phase', 'kubevirt_vmi_migrations_in_unset_phase',
  'kubevirt_vmi_migration_succeeded', 'kubevirt_vmi_migration_failed', 'kubevirt_vmi_migration_start_time_seconds', 'kubevirt_vmi_migration_end_time_seconds',
  'kubevirt_vmi_info', 'kubevirt_vm_info', 'kubevirt_vmi_non_evictable',
]);
const recorded = new Set(ruleFile.groups.flatMap((group) => group.rules.flatMap((rule) => (rule.record === undefined ? [] : [rule.record]))));

/** Every PromQL expression of the dashboard, where it is. */
function expressions(): { where: string; expr: string }[] {
  const fromPanels = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ where: `panel "${panel.title}"`, expr: target.expr })));
  const fromVariables = dashboard.templating.list.filter((variable) => variable.type === 'query').map((variable) => {
    const query = typeof variable.query === 'string' ? variable.query : variable.query.query;
    // label_values(SELECTOR, LABEL) is Grafana's; its selector is PromQL.
    const selector = /^label_values\((.*),\s*\w+\)$/.exec(query)?.[1];
    if (selector === undefined) throw new Error(`variable ${variable.name}: not a label_values query: ${query}`);
    return { where: `variable ${variable.name}`, expr: selector };
  });
  return [...fromPanels, ...fromVariables];
}

/** Grafana's variables, filled in as Grafana would before it sends a query. */
function interpolate(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$namespace', 'default').replaceAll('$name', '.*');
}

test('every panel and query variable uses the ${datasource} variable', () => {
  assert.ok(dashboard.templating.list.some((variable) => variable.name === 'datasource' && variable.type === 'datasource'));
  for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
    assert.equal(panel.datasource?.uid, '${datasource}', `panel "${panel.title}"`);
    for (const target of panel.targets ?? []) assert.equal(target.datasource?.uid, '${datasource}', `panel "${panel.title}"`);
  }
  for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) assert.equal(variable.datasource?.uid, '${datasource}', `variable ${variable.name}`);
});

test('the dashboard covers CPU, memory, disk, network, migrations and phases, and names only metrics Vireo exports or records', () => {
  const all = expressions();
  const names = new Set(all.flatMap(({ expr }) => expr.match(/\b[a-z_]+(:[a-z0-9_]+)+:[a-z0-9_]+\b|\bkubevirt_[a-z0-9_]+\b/g) ?? []));
  for (const name of names) assert.ok(exported.has(name) || recorded.has(name), `${name} is neither exported by Vireo nor recorded by the rule file`);
  for (const needed of ['kubevirt_vmi_vcpu_seconds_total', 'kubevirt_vmi_memory_resident_bytes', 'kubevirt_vmi_storage_write_traffic_bytes_total',
    'kubevirt_vmi_network_transmit_bytes_total', 'kubevirt_vmi_migration_data_remaining_bytes', 'node:kubevirt_vmi_phase:sum']) {
    assert.ok(names.has(needed), `the dashboard does not show ${needed}`);
  }
});

test('every PromQL expression of the dashboard parses in a real Prometheus', { skip, timeout: 60_000 }, async () => {
  const prometheus = await startPrometheus({ scrapeConfigs: [] });
  try {
    // The check itself must be able to fail: a broken expression is refused.
    await assert.rejects(prometheus.query('sum by (name) (rate(kubevirt_vmi_vcpu_seconds_total[1m])'), /parse error/);
    for (const { where, expr } of expressions()) {
      await assert.doesNotReject(prometheus.query(interpolate(expr)), `${where}: ${expr}`);
    }
  } finally {
    await prometheus.stop();
  }
});
