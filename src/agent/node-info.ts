/**
 * The Node object's description of this host, as a kubelet reports it:
 * labels, capacity and allocatable, addresses and `nodeInfo`.
 */
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { arch, cpus, hostname, networkInterfaces, release, totalmem } from 'node:os';

/** The kubelet version Vireo's agent reports (the Kubernetes API level it speaks). */
export const agentKubeletVersion = 'v1.32.0+vireo';

/** The host as its Node object shows it. */
export interface HostDescription {
  labels: Record<string, string>;
  capacity: Record<string, string>;
  allocatable: Record<string, string>;
  addresses: { type: 'InternalIP' | 'Hostname'; address: string }[];
  nodeInfo: Record<string, string>;
}

/** What describing the host needs to know beyond the host itself. */
export interface DescribeHostOptions {
  nodeName: string;
  /** The agent runs inside `vireo server`: the node is also the control plane. */
  controlPlane: boolean;
  /** e.g. `7.2.22`; unknown when QEMU did not answer. */
  qemuVersion: string | undefined;
  /** A directory on the filesystem that holds the guests' disks. */
  dataDir: string;
  /** The node's InternalIP (`vireo agent --address`); by default the first non-loopback IPv4, else 127.0.0.1. */
  address?: string;
}

const gib = 1024 ** 3;
const mib = 1024 ** 2;

/** Describes this host. */
export function describeHost(options: DescribeHostOptions): HostDescription {
  const architecture = goArch(arch());
  const labels: Record<string, string> = {
    'kubernetes.io/hostname': options.nodeName,
    'kubernetes.io/os': 'linux',
    'kubernetes.io/arch': architecture,
    'beta.kubernetes.io/os': 'linux',
    'beta.kubernetes.io/arch': architecture,
    'kubevirt.io/schedulable': 'true',
  };
  if (options.controlPlane) labels['node-role.kubernetes.io/control-plane'] = '';
  const memory = totalmem();
  // Kept back for the host, the agent and QEMU's own overhead: 10 %, at least 256 MiB, at most 1 GiB.
  const reserved = Math.min(gib, Math.max(256 * mib, Math.floor(memory / 10)));
  const cpuCount = String(cpus().length);
  const storage = filesystemBytes(options.dataDir);
  const common: Record<string, string> = { cpu: cpuCount, pods: '110', 'hugepages-2Mi': '0', 'hugepages-1Gi': '0' };
  // KubeVirt's device plugins advertise these per node; guests consume them implicitly.
  if (existsSync('/dev/kvm')) common['devices.kubevirt.io/kvm'] = '1k';
  if (existsSync('/dev/net/tun')) common['devices.kubevirt.io/tun'] = '1k';
  if (existsSync('/dev/vhost-net')) common['devices.kubevirt.io/vhost-net'] = '1k';
  const capacity: Record<string, string> = { ...common, memory: `${Math.floor(memory / 1024)}Ki` };
  const allocatable: Record<string, string> = { ...common, memory: `${Math.floor((memory - reserved) / 1024)}Ki` };
  if (storage !== undefined) {
    capacity['ephemeral-storage'] = `${Math.floor(storage / 1024)}Ki`;
    allocatable['ephemeral-storage'] = String(Math.floor(storage * 0.9));
  }
  return { labels, capacity, allocatable, addresses: addresses(options.address), nodeInfo: nodeInfo(architecture, options.qemuVersion) };
}

function goArch(nodeArch: string): string {
  switch (nodeArch) {
    case 'x64':
      return 'amd64';
    case 'ia32':
      return '386';
    default:
      return nodeArch;
  }
}

function filesystemBytes(dir: string): number | undefined {
  try {
    const fs = statfsSync(dir);
    return fs.blocks * fs.bsize;
  } catch {
    return undefined;
  }
}

function addresses(given: string | undefined): HostDescription['addresses'] {
  const out: HostDescription['addresses'] = [];
  const ipv4 = Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .find((a) => a.family === 'IPv4' && !a.internal);
  out.push({ type: 'InternalIP', address: given ?? ipv4?.address ?? '127.0.0.1' });
  out.push({ type: 'Hostname', address: hostname() });
  return out;
}

function readTrimmed(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

function osImage(): string {
  const text = readTrimmed('/etc/os-release');
  const pretty = /^PRETTY_NAME=(.*)$/m.exec(text)?.[1] ?? 'Linux';
  return pretty.replace(/^"(.*)"$/, '$1');
}

function nodeInfo(architecture: string, qemu: string | undefined): Record<string, string> {
  return {
    machineID: readTrimmed('/etc/machine-id'),
    systemUUID: readTrimmed('/sys/class/dmi/id/product_uuid'),
    bootID: readTrimmed('/proc/sys/kernel/random/boot_id'),
    kernelVersion: release(),
    osImage: osImage(),
    containerRuntimeVersion: `qemu://${qemu ?? 'unknown'}`,
    kubeletVersion: agentKubeletVersion,
    kubeProxyVersion: agentKubeletVersion,
    operatingSystem: 'linux',
    architecture,
  };
}
