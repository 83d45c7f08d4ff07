/**
 * `vireo top vm [NAME]`: live CPU, memory, disk and network rates of running
 * VMs, as `kubectl top pod` shows pods. It reads the metrics of the nodes
 * running them twice through the node proxy
 * (`/api/v1/nodes/NODE/proxy/metrics`, KubeVirt's per-VMI families) and
 * prints the rates between the two reads.
 */
import { parseArgs } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import type { KObject } from '../../api/object.js';
import { stringAt } from '../../api/kinds/read.js';
import { parseSamples } from '../../agent/metrics/index.js';
import type { ParsedSample } from '../../agent/metrics/index.js';
import { errorFromResponse, resources } from '../../client/index.js';
import type { HttpClient } from '../../client/index.js';
import { CliError } from '../errors.js';
import { clientFor, connectionFlags, connectionFor } from './connection.js';
import { expectStatus } from './failures.js';

export const topUsage = `  top vm [NAME] [-A] [--interval S]
                         Live CPU (cores), memory (QEMU's resident set), disk and network
                         rates of running VMs, measured over S seconds (default 1).`;

/** One VM's rates between two reads. */
export interface VmRates {
  namespace: string;
  name: string;
  node: string;
  cpuCores: number | undefined;
  memoryBytes: number | undefined;
  diskReadBps: number;
  diskWriteBps: number;
  netRxBps: number;
  netTxBps: number;
}

function sumOf(samples: ParsedSample[], name: string, namespace: string, vmi: string): number | undefined {
  let total: number | undefined;
  for (const s of samples) if (s.name === name && s.labels.namespace === namespace && s.labels.name === vmi) total = (total ?? 0) + s.value;
  return total;
}

/** The rates of VMI `namespace/name` between two reads `seconds` apart (a counter that went backwards, a restarted guest, counts as 0). */
export function ratesOf(before: ParsedSample[], after: ParsedSample[], seconds: number, vmi: { namespace: string; name: string; node: string }): VmRates {
  const rate = (family: string): number | undefined => {
    const a = sumOf(before, family, vmi.namespace, vmi.name);
    const b = sumOf(after, family, vmi.namespace, vmi.name);
    return a === undefined || b === undefined ? undefined : Math.max(0, b - a) / seconds;
  };
  return {
    ...vmi,
    cpuCores: rate('kubevirt_vmi_cpu_usage_seconds_total') ?? rate('kubevirt_vmi_vcpu_seconds_total'),
    memoryBytes: sumOf(after, 'kubevirt_vmi_memory_resident_bytes', vmi.namespace, vmi.name),
    diskReadBps: rate('kubevirt_vmi_storage_read_traffic_bytes_total') ?? 0,
    diskWriteBps: rate('kubevirt_vmi_storage_write_traffic_bytes_total') ?? 0,
    netRxBps: rate('kubevirt_vmi_network_receive_bytes_total') ?? 0,
    netTxBps: rate('kubevirt_vmi_network_transmit_bytes_total') ?? 0,
  };
}

function bytes(value: number | undefined): string {
  if (value === undefined) return '<unknown>';
  if (value >= 1024 * 1024 * 1024) return `${(value / (1024 * 1024 * 1024)).toFixed(1)}Gi`;
  if (value >= 1024 * 1024) return `${Math.round(value / (1024 * 1024))}Mi`;
  if (value >= 1024) return `${Math.round(value / 1024)}Ki`;
  return `${Math.round(value)}`;
}

/** The table `vireo top vm` prints, kubectl top's style (`-A` adds the namespace). */
export function formatTop(rows: VmRates[], allNamespaces: boolean): string {
  const header = [...(allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'NODE', 'CPU(cores)', 'MEMORY(bytes)', 'DISK-READ/s', 'DISK-WRITE/s', 'NET-RX/s', 'NET-TX/s'];
  const lines = rows.map((r) => [
    ...(allNamespaces ? [r.namespace] : []), r.name, r.node,
    r.cpuCores === undefined ? '<unknown>' : `${Math.round(r.cpuCores * 1000)}m`,
    bytes(r.memoryBytes), bytes(r.diskReadBps), bytes(r.diskWriteBps), bytes(r.netRxBps), bytes(r.netTxBps),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  return [header, ...lines].map((l) => l.map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 3))).join('')).join('\n') + '\n';
}

async function nodeMetrics(client: HttpClient, node: string): Promise<ParsedSample[]> {
  const response = await client.raw('GET', `/api/v1/nodes/${encodeURIComponent(node)}/proxy/metrics`);
  expectStatus(response, 200, errorFromResponse);
  return parseSamples(response.body);
}

export async function runTop(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { ...connectionFlags, 'all-namespaces': { type: 'boolean', short: 'A' }, interval: { type: 'string' } }, allowPositionals: true, strict: true });
  const [kind, name, extra] = positionals;
  if ((kind !== 'vm' && kind !== 'vms' && kind !== 'vmi' && kind !== 'vmis') || extra !== undefined) throw new CliError('usage', `usage: vireo top vm [NAME] [-n NAMESPACE | -A] [--interval S]`);
  const interval = values.interval === undefined ? 1 : Number(values.interval);
  if (!Number.isFinite(interval) || interval <= 0 || interval > 60) throw new CliError('usage', `--interval must be a number of seconds above 0 and at most 60, got ${JSON.stringify(values.interval)}`);
  const all = values['all-namespaces'] === true && name === undefined;
  const connection = connectionFor(values);
  const client = clientFor(connection);
  try {
    let vmis: KObject[];
    if (name !== undefined) {
      const vmi = await client.tryGet(resources.virtualMachineInstances, connection.namespace, name);
      if (vmi === undefined) throw new CliError('not-found', `VM ${name} has no VirtualMachineInstance in namespace ${connection.namespace}: it is not running (start it with vireo start ${name})`);
      if (stringAt(vmi, 'status', 'phase') !== 'Running') throw new CliError('unavailable', `VM ${name} is not running (its VMI is ${stringAt(vmi, 'status', 'phase') ?? 'Pending'}): there is nothing to measure yet`);
      vmis = [vmi];
    } else {
      vmis = (await client.list(resources.virtualMachineInstances, all ? {} : { namespace: connection.namespace })).items.filter((v) => stringAt(v, 'status', 'phase') === 'Running');
      if (vmis.length === 0) {
        process.stdout.write(`No running VMs found${all ? '' : ` in ${connection.namespace} namespace`}.\n`);
        return;
      }
    }
    const nodes = [...new Set(vmis.map((v) => stringAt(v, 'status', 'nodeName') ?? '').filter((n) => n !== ''))];
    const read = async (): Promise<{ samples: Map<string, ParsedSample[]>; at: number }> => {
      const samples = new Map(await Promise.all(nodes.map(async (node) => [node, await nodeMetrics(client, node)] as const)));
      return { samples, at: performance.now() };
    };
    const first = await read();
    await delay(interval * 1000);
    const second = await read();
    const seconds = (second.at - first.at) / 1000;
    const rows = vmis.map((v) => {
      const node = stringAt(v, 'status', 'nodeName') ?? '';
      return ratesOf(first.samples.get(node) ?? [], second.samples.get(node) ?? [], seconds, { namespace: v.metadata.namespace ?? '', name: v.metadata.name ?? '', node });
    }).sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
    process.stdout.write(formatTop(rows, all));
  } finally {
    client.close();
  }
}
