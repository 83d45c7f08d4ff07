/**
 * What a VMI asks of a node and what a node has to give, in the units the
 * scheduler compares: CPU in millicores, memory in bytes. A VMI asks what its
 * virt-launcher pod would request in KubeVirt: its CPU request, else its
 * vCPUs divided by the CPU allocation ratio (dedicated CPUs count whole);
 * its memory request, else its guest memory, plus the per-VM overhead.
 */
import type { KObject } from '../api/object.js';
import { at, booleanAt, numberAt } from '../api/kinds/read.js';
import { parseQuantity } from '../api/validation/index.js';

/** CPU in millicores and memory in bytes: integers, so sums stay exact. */
export interface Resources {
  cpu: number;
  memory: number;
}

const milli = (cores: number): number => Math.round(cores * 1000);

/** How a VMI's requests are derived. */
export interface RequestOptions {
  /** vCPUs per requested core for VMIs without a CPU request (KubeVirt's `cpuAllocationRatio`, default 10). */
  cpuAllocationRatio: number;
  /** Added to every VMI's memory: what QEMU itself takes beside the guest. */
  memoryOverheadBytes: number;
}

/** The guest's vCPUs: sockets × cores × threads, each 1 when unset. */
export function vcpusOf(vmi: KObject): number {
  const one = (field: string): number => Math.max(1, numberAt(vmi, 'spec', 'domain', 'cpu', field) ?? 1);
  return one('sockets') * one('cores') * one('threads');
}

/** What the VMI needs reserved on its node. */
export function vmiRequests(vmi: KObject, options: RequestOptions): Resources {
  const domain = at(vmi, 'spec', 'domain');
  const requestedCpu = parseQuantity(at(domain, 'resources', 'requests', 'cpu'));
  const vcpus = vcpusOf(vmi);
  const dedicated = booleanAt(domain, 'cpu', 'dedicatedCpuPlacement') === true;
  const cpu = requestedCpu ?? (dedicated ? vcpus : vcpus / Math.max(1, options.cpuAllocationRatio));
  const memory =
    parseQuantity(at(domain, 'resources', 'requests', 'memory')) ??
    parseQuantity(at(domain, 'memory', 'guest')) ??
    parseQuantity(at(domain, 'resources', 'limits', 'memory')) ??
    0;
  return { cpu: milli(cpu), memory: Math.round(memory + options.memoryOverheadBytes) };
}

/** `status.allocatable`, else `status.capacity`; 0 for what the node does not report. */
export function nodeAllocatable(node: KObject): Resources {
  const read = (resource: string): number => parseQuantity(at(node, 'status', 'allocatable', resource)) ?? parseQuantity(at(node, 'status', 'capacity', resource)) ?? 0;
  return { cpu: milli(read('cpu')), memory: Math.round(read('memory')) };
}

/** `a + b`. */
export function add(a: Resources, b: Resources): Resources {
  return { cpu: a.cpu + b.cpu, memory: a.memory + b.memory };
}

/** Nothing requested. */
export const zero: Resources = { cpu: 0, memory: 0 };
