/**
 * virt-controller's inventory families, computed from the informers'
 * objects (pure, like `object-families.ts`), with KubeVirt's names, label
 * sets and values: what a VMI's status says of its addresses
 * (`kubevirt_vmi_status_addresses`), the vNICs of VMIs and VMs
 * (`kubevirt_vmi_vnic_info`, `kubevirt_vm_vnic_info`), what a VM asks for
 * and is limited to (`kubevirt_vm_resource_requests`, `_limits`, after its
 * instancetype and preference are applied, as KubeVirt's collector applies
 * them), and the size of the claims its disks use
 * (`kubevirt_vm_disk_allocated_size_bytes`).
 */
import type { KObject } from '../../api/object.js';
import { at, has, recordAt, recordsAt, stringAt } from '../../api/kinds/read.js';
import { parseQuantity } from '../../api/validation/index.js';
import { expandedTemplateSpec } from '../vm/index.js';
import type { FamilyDef, InstancetypeKind, Sample } from './object-families.js';

export const inventoryFamilies = {
  vmiStatusAddresses: { name: 'kubevirt_vmi_status_addresses', help: 'The addresses of a VirtualMachineInstance: the address of each network interface its status reports under the address label, and its kind under the type label (ExternalInterface with an address, SystemInterface without one).', labelNames: ['node', 'namespace', 'name', 'vnic_name', 'interface_name', 'address', 'type'] },
  vmiVnicInfo: { name: 'kubevirt_vmi_vnic_info', help: 'Details of each vNIC of a VirtualMachineInstance: its name, binding type, network and binding name, and model.', labelNames: ['name', 'namespace', 'vnic_name', 'binding_type', 'network', 'binding_name', 'model'] },
  vmVnicInfo: { name: 'kubevirt_vm_vnic_info', help: 'Details of each vNIC a VirtualMachine\'s template declares: its name, binding type, network and binding name, and model.', labelNames: ['name', 'namespace', 'vnic_name', 'binding_type', 'network', 'binding_name', 'model'] },
  vmResourceRequests: { name: 'kubevirt_vm_resource_requests', help: 'Resources a VirtualMachine requests: memory and CPU, by where the value comes from (source).', labelNames: ['name', 'namespace', 'resource', 'unit', 'source'] },
  vmResourceLimits: { name: 'kubevirt_vm_resource_limits', help: 'Resource limits of a VirtualMachine: CPU and memory, only those that are set.', labelNames: ['name', 'namespace', 'resource', 'unit'] },
  vmDiskAllocatedSize: { name: 'kubevirt_vm_disk_allocated_size_bytes', help: 'Allocated size of a VirtualMachine\'s disk in bytes, from its PersistentVolumeClaim (persistentvolumeclaim), with the claim\'s volume_mode (Filesystem or Block) and the disk\'s name (device).', labelNames: ['name', 'namespace', 'persistentvolumeclaim', 'volume_mode', 'device'] },
} as const satisfies Record<string, FamilyDef>;

export type InventoryFamily = keyof typeof inventoryFamilies;

/** What the inventory families are computed from. */
export interface InventorySnapshot {
  vms: readonly KObject[];
  vmis: readonly KObject[];
  /** A PersistentVolumeClaim by `namespace/name`. */
  claim(key: string): KObject | undefined;
  instancetypeLike(kind: InstancetypeKind, key: string): KObject | undefined;
}

/** KubeVirt's model label for a vNIC that names none. */
const noModel = '<none>';
/** KubeVirt's network label for the pod network. */
const podNetwork = 'pod networking';
const coreBindings = ['masquerade', 'bridge', 'sriov'] as const;

/** Every inventory family's samples. */
export function inventorySamples(objects: InventorySnapshot): Record<InventoryFamily, Sample[]> {
  const out: Record<InventoryFamily, Sample[]> = { vmiStatusAddresses: [], vmiVnicInfo: [], vmVnicInfo: [], vmResourceRequests: [], vmResourceLimits: [], vmDiskAllocatedSize: [] };
  for (const vmi of objects.vmis) {
    const namespace = vmi.metadata.namespace ?? '';
    const name = vmi.metadata.name ?? '';
    const node = stringAt(vmi, 'status', 'nodeName') ?? '';
    for (const iface of recordsAt(vmi, 'status', 'interfaces')) {
      const vnic = stringAt(iface, 'name') ?? '';
      const interfaceName = stringAt(iface, 'interfaceName') ?? '';
      const address = stringAt(iface, 'ipAddress') ?? '';
      // As KubeVirt: an entry with neither an address nor a name would be one series per VMI whatever it is, so it is left out.
      if (address === '' && vnic === '' && interfaceName === '') continue;
      out.vmiStatusAddresses.push({ labels: { node, namespace, name, vnic_name: vnic, interface_name: interfaceName, address, type: address === '' ? 'SystemInterface' : 'ExternalInterface' }, value: 1 });
    }
    out.vmiVnicInfo.push(...vnicSamples(name, namespace, recordAt(vmi, 'spec')));
  }
  for (const vm of objects.vms) {
    const namespace = vm.metadata.namespace ?? '';
    const name = vm.metadata.name ?? '';
    const template = recordAt(vm, 'spec', 'template', 'spec');
    if (template === undefined) continue;
    out.vmVnicInfo.push(...vnicSamples(name, namespace, template));
    const spec = expandedTemplateSpec(vm, (kind, key) => objects.instancetypeLike(kind, key)) ?? template;
    const { requests, limits } = resourceSamples(spec);
    for (const [resource, unit, source, value] of requests) out.vmResourceRequests.push({ labels: { name, namespace, resource, unit, source }, value });
    for (const [resource, unit, value] of limits) out.vmResourceLimits.push({ labels: { name, namespace, resource, unit }, value });
    out.vmDiskAllocatedSize.push(...diskSamples(vm, template, objects));
  }
  return out;
}

/** One sample per interface whose network the spec declares (KubeVirt skips the others). */
function vnicSamples(name: string, namespace: string, spec: Record<string, unknown> | undefined): Sample[] {
  const networks = recordsAt(spec, 'networks');
  const samples: Sample[] = [];
  for (const iface of recordsAt(spec, 'domain', 'devices', 'interfaces')) {
    const vnic = stringAt(iface, 'name') ?? '';
    const network = networks.find((n) => stringAt(n, 'name') === vnic);
    let networkName: string | undefined;
    if (has(network, 'pod')) networkName = podNetwork;
    else if (has(network, 'multus')) networkName = stringAt(network, 'multus', 'networkName') ?? '';
    if (networkName === undefined) continue;
    const core = coreBindings.find((binding) => has(iface, binding));
    const plugin = stringAt(iface, 'binding', 'name');
    const [bindingType, bindingName] = core !== undefined ? ['core', core] : has(iface, 'binding') ? ['plugin', plugin ?? ''] : ['', ''];
    const model = stringAt(iface, 'model') ?? '';
    samples.push({ labels: { name, namespace, vnic_name: vnic, binding_type: bindingType, network: networkName, binding_name: bindingName, model: model === '' ? noModel : model }, value: 1 });
  }
  return samples;
}

/** A quantity as Kubernetes' `Value()` gives it: whole units, rounded up. */
function wholeUnits(value: unknown): number | undefined {
  const parsed = parseQuantity(value);
  return parsed === undefined ? undefined : Math.ceil(parsed);
}

/** CPUs as KubeVirt reports them: milli-CPUs rounded up, in cores. */
function cores(value: unknown): number | undefined {
  const parsed = parseQuantity(value);
  return parsed === undefined ? undefined : Math.ceil(Math.round(parsed * 1e9) / 1e6) / 1000;
}

type RequestRow = [resource: string, unit: string, source: string, value: number];
type LimitRow = [resource: string, unit: string, value: number];

/**
 * The requests and limits KubeVirt's collector reports for a VM template's
 * spec: memory asked of the domain, guest memory, the hugepage size,
 * the CPU topology, CPU requests (or the 1/1/1 default when neither is
 * set), and the effective vCPUs and guest memory.
 */
export function resourceSamples(spec: Record<string, unknown>): { requests: RequestRow[]; limits: LimitRow[] } {
  const requests: RequestRow[] = [];
  const limits: LimitRow[] = [];
  const domain = recordAt(spec, 'domain');
  const requested = recordAt(domain, 'resources', 'requests') ?? {};
  const limited = recordAt(domain, 'resources', 'limits') ?? {};
  const positive = (value: number | undefined): value is number => value !== undefined && value !== 0;

  const memoryRequest = wholeUnits(requested.memory);
  if (positive(memoryRequest)) requests.push(['memory', 'bytes', 'domain', memoryRequest]);
  const guestMemory = wholeUnits(at(domain, 'memory', 'guest'));
  if (positive(guestMemory)) requests.push(['memory', 'bytes', 'guest', guestMemory]);
  const hugepages = recordAt(domain, 'memory', 'hugepages');
  if (hugepages !== undefined) {
    // KubeVirt reports the page size here, not an amount.
    const pageSize = wholeUnits(stringAt(hugepages, 'pageSize'));
    if (pageSize !== undefined) requests.push(['memory', 'bytes', 'hugepages', pageSize]);
  }
  const memoryLimit = wholeUnits(limited.memory);
  if (positive(memoryLimit)) limits.push(['memory', 'bytes', memoryLimit]);

  const cpu = recordAt(domain, 'cpu');
  const topology = { cores: count(cpu, 'cores'), threads: count(cpu, 'threads'), sockets: count(cpu, 'sockets') };
  if (cpu !== undefined) {
    for (const unit of ['cores', 'threads', 'sockets'] as const) {
      if (topology[unit] !== 0) requests.push(['cpu', unit, 'domain', topology[unit]]);
    }
  }
  const cpuRequest = cores(requested.cpu);
  if (positive(cpuRequest)) requests.push(['cpu', 'cores', 'requests', cpuRequest]);
  else if (cpu === undefined) for (const unit of ['cores', 'threads', 'sockets']) requests.push(['cpu', unit, 'default', 1]);
  const cpuLimit = cores(limited.cpu);
  if (positive(cpuLimit)) limits.push(['cpu', 'cores', cpuLimit]);

  requests.push(['cpu', 'cores', 'guest_effective', cpu === undefined ? 1 : vcpus(topology)]);
  // The guest's memory: guest memory when set, else the limit when no request is, else the request.
  const effective = guestMemory ?? (requested.memory === undefined && limited.memory !== undefined ? memoryLimit : memoryRequest);
  if (positive(effective)) requests.push(['memory', 'bytes', 'guest_effective', effective]);
  return { requests, limits };
}

function count(cpu: Record<string, unknown> | undefined, field: string): number {
  const value = cpu?.[field];
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : 0;
}

/** KubeVirt's vCPU count: the product of the topology's set (non-zero) parts. */
function vcpus(topology: { cores: number; threads: number; sockets: number }): number {
  const set = [topology.cores, topology.sockets, topology.threads].filter((n) => n !== 0);
  return set.length === 0 ? 0 : set.reduce((a, b) => a * b, 1);
}

/**
 * A sample per volume on a claim or DataVolume whose PVC exists: the size
 * the VM's DataVolume template asks for (for a DataVolume), else the claim's
 * storage request.
 */
function diskSamples(vm: KObject, template: Record<string, unknown>, objects: InventorySnapshot): Sample[] {
  const namespace = vm.metadata.namespace ?? '';
  const name = vm.metadata.name ?? '';
  const samples: Sample[] = [];
  for (const volume of recordsAt(template, 'volumes')) {
    const claimName = stringAt(volume, 'persistentVolumeClaim', 'claimName') ?? stringAt(volume, 'dataVolume', 'name');
    if (claimName === undefined || claimName === '') continue;
    const claim = objects.claim(`${namespace}/${claimName}`);
    if (claim === undefined) continue;
    const isDataVolume = !has(volume, 'persistentVolumeClaim');
    const dataVolumeTemplate = isDataVolume ? recordsAt(vm, 'spec', 'dataVolumeTemplates').find((t) => stringAt(t, 'metadata', 'name') === claimName) : undefined;
    const templateSize = dataVolumeTemplate === undefined ? undefined
      : has(dataVolumeTemplate, 'spec', 'pvc') ? at(dataVolumeTemplate, 'spec', 'pvc', 'resources', 'requests', 'storage') : at(dataVolumeTemplate, 'spec', 'storage', 'resources', 'requests', 'storage');
    const size = wholeUnits(templateSize ?? at(claim, 'spec', 'resources', 'requests', 'storage')) ?? 0;
    samples.push({ labels: { name, namespace, persistentvolumeclaim: claim.metadata.name ?? claimName, volume_mode: stringAt(claim, 'spec', 'volumeMode') ?? '', device: stringAt(volume, 'name') ?? '' }, value: size });
  }
  return samples;
}
