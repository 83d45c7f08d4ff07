/**
 * `domain.cpu` (topology, model, features), the CPU-related `features`
 * (Hyper-V enlightenments, KVM hiding, PV spinlocks) and the accelerator.
 */
import { parseQuantity } from '../../api/validation/index.js';
import type { BuildContext } from './context.js';
import { warn } from './context.js';
import { invalidDomain } from './errors.js';
import { options } from './keyval.js';
import type { OptionValue } from './keyval.js';

// q35 without an IOMMU (x2APIC interrupt remapping) addresses at most 255 vCPUs.
const maxVcpus = 255;

const featurePolicies = ['force', 'require', 'optional', 'disable', 'forbid'] as const;

/** KubeVirt's Hyper-V toggles and the QEMU CPU property each turns on. */
const hypervFlags: readonly (readonly [string, string])[] = [
  ['relaxed', 'hv-relaxed'],
  ['vapic', 'hv-vapic'],
  ['vpindex', 'hv-vpindex'],
  ['runtime', 'hv-runtime'],
  ['synic', 'hv-synic'],
  ['synictimer', 'hv-stimer'],
  ['reset', 'hv-reset'],
  ['frequencies', 'hv-frequencies'],
  ['reenlightenment', 'hv-reenlightenment'],
  ['tlbflush', 'hv-tlbflush'],
  ['ipi', 'hv-ipi'],
  ['evmcs', 'hv-evmcs'],
];

/** `-smp`: sockets × cores × threads, each defaulting to 1, as KubeVirt's `GetCPUTopology`. */
function topologyArgs(ctx: BuildContext): string[] {
  const cpu = ctx.domain.get('cpu');
  let sockets = cpu.get('sockets').integer(0, maxVcpus) ?? 0;
  const cores = cpu.get('cores').integer(0, maxVcpus) ?? 0;
  const threads = cpu.get('threads').integer(0, maxVcpus) ?? 0;
  if (sockets === 0 && cores === 0 && threads === 0) {
    // Without a topology KubeVirt takes the vCPU count from the CPU limit (else request), as sockets.
    const resources = ctx.domain.get('resources');
    for (const source of [resources.get('limits').get('cpu'), resources.get('requests').get('cpu')]) {
      if (!source.present) continue;
      const value = parseQuantity(source.value);
      if (value === undefined || value <= 0) throw invalidDomain(source.path, `"${String(source.value)}" is not a positive CPU quantity`);
      sockets = Math.ceil(value);
      break;
    }
  }
  const topology = { sockets: Math.max(sockets, 1), cores: Math.max(cores, 1), threads: Math.max(threads, 1) };
  const vcpus = topology.sockets * topology.cores * topology.threads;
  if (vcpus > maxVcpus) throw invalidDomain(cpu.path, `${vcpus} vCPUs (sockets × cores × threads) is more than the ${maxVcpus} a q35 machine supports`);
  ctx.vcpus = vcpus;
  if (vcpus > ctx.facts.hostCpus) ctx.warnings.push(`${cpu.path}: ${vcpus} vCPUs on a node with ${ctx.facts.hostCpus} CPUs: the guest is overcommitted`);
  const maxSockets = cpu.get('maxSockets').integer(0, maxVcpus) ?? 0;
  let maxcpus: number | undefined;
  if (maxSockets > topology.sockets) {
    maxcpus = maxSockets * topology.cores * topology.threads;
    if (maxcpus > maxVcpus) throw invalidDomain(cpu.get('maxSockets').path, `${maxcpus} vCPUs at most (maxSockets × cores × threads) is more than the ${maxVcpus} a q35 machine supports`);
  }
  const socketsOnBoard = maxcpus === undefined ? topology.sockets : maxSockets;
  return ['-smp', options(undefined, { cpus: vcpus, maxcpus, sockets: socketsOnBoard, cores: topology.cores, threads: topology.threads })];
}

/** The QEMU CPU model: host models need KVM; under TCG `max` emulates all QEMU can. */
function cpuModel(ctx: BuildContext): string {
  const model = ctx.domain.get('cpu').get('model').string() ?? '';
  if (model === '' || model === 'host-model' || model === 'host-passthrough') return ctx.facts.accel === 'kvm' ? 'host' : 'max';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(model)) throw invalidDomain(ctx.domain.get('cpu').get('model').path, `"${model}" is not a CPU model name`);
  return model;
}

function cpuProperties(ctx: BuildContext): Record<string, OptionValue> {
  const props: Record<string, OptionValue> = {};
  for (const feature of ctx.domain.get('cpu').get('features').items()) {
    const name = feature.get('name').string();
    if (name === undefined || !/^[a-z0-9][a-z0-9._-]*$/.test(name)) throw invalidDomain(feature.get('name').path, 'must be a CPU feature name such as "pcid"');
    const policy = feature.get('policy').oneOf(featurePolicies) ?? 'require';
    props[name] = policy !== 'disable' && policy !== 'forbid';
  }
  const features = ctx.domain.get('features');
  const kvm = ctx.facts.accel === 'kvm';
  if (features.get('kvm').get('hidden').boolean() === true && kvm) props.kvm = false;
  if (features.get('pvspinlock').present && kvm) props['kvm-pv-unhalt'] = features.get('pvspinlock').enabled(true);
  if (ctx.domain.get('clock').get('timer').get('kvm').present && kvm) props.kvmclock = ctx.domain.get('clock').get('timer').get('kvm').enabled(true, 'present');
  const hyperv = features.get('hyperv');
  const hypervClock = ctx.domain.get('clock').get('timer').get('hyperv');
  const passthrough = features.get('hypervPassthrough');
  if (hyperv.present || hypervClock.present || passthrough.present) {
    if (!kvm) {
      for (const node of [hyperv, hypervClock, passthrough]) if (node.present) warn(ctx, node, 'Hyper-V enlightenments need KVM; the guest runs under software emulation without them');
      return props;
    }
    if (passthrough.enabled(false)) props['hv-passthrough'] = true;
    for (const [field, flag] of hypervFlags) {
      if (hyperv.get(field).present) props[flag] = hyperv.get(field).enabled(true);
    }
    const spinlocks = hyperv.get('spinlocks');
    if (spinlocks.present && spinlocks.enabled(true)) {
      props['hv-spinlocks'] = `0x${(spinlocks.get('spinlocks').integer(4095, 0xffffffff) ?? 4096).toString(16)}`;
    }
    if (hyperv.get('synictimer').get('direct').enabled(false)) props['hv-stimer-direct'] = true;
    const vendor = hyperv.get('vendorid');
    if (vendor.enabled(false)) props['hv-vendor-id'] = vendor.get('vendorid').string();
    if (hypervClock.present) props['hv-time'] = hypervClock.enabled(true, 'present');
  }
  return props;
}

/** `-accel`, `-cpu` and `-smp`. Sets `ctx.vcpus`. */
export function cpuArgs(ctx: BuildContext): string[] {
  const smp = topologyArgs(ctx);
  // Multi-threaded TCG runs one host thread per vCPU; with one vCPU or one host CPU it only adds locking.
  const accel = ctx.facts.accel === 'kvm' ? 'kvm' : options('tcg', { thread: ctx.vcpus > 1 && ctx.facts.hostCpus > 1 ? 'multi' : 'single' });
  const cpu = ctx.domain.get('cpu');
  for (const field of ['dedicatedCpuPlacement', 'isolateEmulatorThread']) {
    if (cpu.get(field).boolean() === true) warn(ctx, cpu.get(field), 'CPU pinning is not supported yet; vCPUs float on the node\'s CPUs');
  }
  for (const field of ['numa', 'realtime']) {
    if (cpu.get(field).present) warn(ctx, cpu.get(field), 'not supported yet; ignored');
  }
  return ['-accel', accel, '-cpu', options(cpuModel(ctx), cpuProperties(ctx)), ...smp];
}
