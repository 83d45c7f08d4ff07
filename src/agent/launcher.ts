/**
 * Starting a VMI's guest: a fresh directory, the volumes, the QEMU command
 * line, the process (detached, with `-S` so the console is attached before
 * the first instruction runs), QMP, then `cont` unless the VMI asked to
 * start paused.
 */
import { copyFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { KObject } from '../api/object.js';
import { stringAt } from '../api/kinds/read.js';
import { podAddresses } from '../api/kinds/vmi-addresses.js';
import type { Client } from '../client/index.js';
import type { Logger } from '../log/logger.js';
import type { Cgroups } from './cgroups.js';
import { vmiCgroupSpec } from './cgroups.js';
import type { ImageStore, PullEvent } from './images/index.js';
import { buildQemuCommand, efiVarsTemplate, invalidDomain } from './qemu/index.js';
import type { NodeFacts, VmiPaths } from './qemu/index.js';
import { ensureMasterKey, masterKeyPath, sealSecret } from './disk-secrets.js';
import { createVmiDir, vmiLayout, writeRecord } from './layout.js';
import type { VmiRecord } from './layout.js';
import { Machine } from './machine.js';
import { signalQemu, spawnQemu } from './qemu-process.js';
import { prepareVolumes } from './volumes.js';
import type { ClaimFile } from './volumes.js';
import type { PodNetwork, SandboxSpec } from '../net/pod/index.js';
import type { NicDevice, PodInterface, VmiInterfaces } from './pod-interfaces.js';
import { interfacesOf, nicModels } from './pod-interfaces.js';

/** A pod's resolv.conf search list in Kubernetes (KubeVirt hands the pod's to the guest). */
function clusterSearchDomains(namespace: string): string[] {
  return [`${namespace}.svc.cluster.local`, 'svc.cluster.local', 'cluster.local'];
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * What the VMI's sandbox hands its guest: DHCP's host name (`spec.hostname`,
 * else the VMI's name up to its first dot, at most 63 characters) and
 * domain (with `spec.subdomain`), and the search list of a pod in the
 * VMI's namespace (the DNS server is the node's, filled in by the pod
 * network). Both must be DNS labels: they end up in dnsmasq's arguments.
 */
function sandboxSpecOf(vmi: KObject, nic: PrimaryNic, multus: VmiInterfaces['multus']): SandboxSpec {
  const subdomain = stringAt(vmi, 'spec', 'subdomain');
  const hostname = stringAt(vmi, 'spec', 'hostname');
  for (const [field, value] of [['spec.hostname', hostname], ['spec.subdomain', subdomain]] as const) {
    if (value !== undefined && !dnsLabel.test(value)) throw invalidDomain(field, `"${value}" is not a DNS label: use at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit`);
  }
  const spec: SandboxSpec = {
    binding: nic.binding,
    mac: nic.mac,
    hostname: hostname ?? (vmi.metadata.name ?? 'vmi').split('.')[0]?.slice(0, 63).replace(/-+$/, '') ?? 'vmi',
    dnsServers: [],
    searchDomains: clusterSearchDomains(vmi.metadata.namespace ?? 'default'),
    ports: nic.ports,
  };
  if (subdomain !== undefined) spec.domain = `${subdomain}.${vmi.metadata.namespace ?? 'default'}.svc.cluster.local`;
  if (multus.length > 0) {
    spec.owner = { namespace: vmi.metadata.namespace ?? '', name: vmi.metadata.name ?? '' };
    spec.secondaries = multus.map((m) => ({ name: m.name, networkName: m.networkName, interfaceName: m.interfaceName, mac: m.mac, ...(m.requestedMac === undefined ? {} : { requestedMac: m.requestedMac }) }));
  }
  return spec;
}

/** The guest's primary NIC, as its sandbox serves it: the pod NIC, or a Multus default network's (bridge binding, no forwarded ports). */
type PrimaryNic = Pick<PodInterface, 'binding' | 'mac' | 'ports'>;

/** The VMI's primary NIC and whether it is on a Multus default network; undefined for a VMI without NICs. */
function primaryNicOf(nics: VmiInterfaces): { nic: PrimaryNic; onDefaultNetwork: boolean } | undefined {
  if (nics.pod !== undefined) return { nic: nics.pod, onDefaultNetwork: false };
  const multusDefault = nics.multus.find((m) => m.isDefault === true);
  return multusDefault === undefined ? undefined : { nic: { binding: 'bridge', mac: multusDefault.mac, ports: [] }, onDefaultNetwork: true };
}

/** QEMU's side of a NIC: its device on the tap the sandbox made. */
function nicPaths(nic: NicDevice, tap: string): NonNullable<VmiPaths['nics']>[number] {
  return { name: nic.name, tap, mac: nic.mac, device: nicModels[nic.model], ...(nic.pciAddress === undefined ? {} : { pciAddress: nic.pciAddress }), ...(nic.bootOrder === undefined ? {} : { bootOrder: nic.bootOrder }) };
}

/** What starting a guest needs besides the VMI. */
export interface LaunchOptions {
  client: Client;
  images: ImageStore;
  dataDir: string;
  /** Where the QEMU is put (its cgroup is made here; the caller removes it when the launch fails). */
  cgroups: Cgroups;
  facts: NodeFacts;
  /** Why `facts.accel` (for the SoftwareEmulation condition after a restart). */
  accelReason: string;
  logger: Logger;
  /** Called when the machine's state changes. */
  onChange: () => void;
  /** Called with each guest panic's `info` (`GUEST_PANICKED`). */
  onPanic?: ((info: Record<string, unknown> | undefined) => void) | undefined;
  /** Called with the `Pulling`/`Pulled` Events of the images the guest needs. */
  onPullEvent: (event: PullEvent) => void;
  /** The node's pod network, where the VMI's sandbox is made when it has a pod NIC (the caller removes it when the launch fails). */
  podNetwork: PodNetwork;
  /** This node: the volumes of the VMI's claims must be pinned to it. */
  nodeName?: string;
  /** The target of a live migration: QEMU waits for the guest (`-incoming defer`) and is not resumed here. */
  incoming?: boolean;
  /** A migration target's fresh copies of the VMI's claims, by volume name. */
  claimFiles?: Record<string, ClaimFile>;
  signal: AbortSignal;
}

/**
 * Starts `vmi`'s guest and resolves with its machine once QMP answers and
 * the guest runs (or waits paused, for `startStrategy: Paused`). Throws
 * `VolumeError`, `DomainConfigError` or `QemuStartError` for the caller to
 * turn into status; leaves nothing running when it throws.
 */
export async function launchMachine(vmi: KObject, options: LaunchOptions): Promise<Machine> {
  const uid = vmi.metadata.uid ?? '';
  const layout = vmiLayout(options.dataDir, uid);
  // Read first: a NIC that cannot be attached fails the VMI before anything is made for it.
  const nics = interfacesOf(vmi);
  const primary = primaryNicOf(nics);
  const sandboxSpec = primary === undefined ? undefined : sandboxSpecOf(vmi, primary.nic, nics.multus);
  // The target of a live migration: the guest keeps the addresses it has.
  if (options.incoming === true && sandboxSpec !== undefined) sandboxSpec.keptAddresses = keptPodAddresses(vmi);
  // Whatever an earlier, interrupted attempt left is not trusted.
  await rm(layout.dir, { recursive: true, force: true });
  await createVmiDir(layout);
  // The sandbox (~100 ms of ip/nft/dnsmasq) is made while the disks are prepared: it is off QEMU's critical path.
  const started = Date.now();
  const sandboxMade = sandboxSpec === undefined ? undefined : primary?.onDefaultNetwork === true ? options.podNetwork.setUpOnDefaultNetwork(uid, sandboxSpec, options.signal) : options.podNetwork.setUp(uid, sandboxSpec, options.signal);
  // Settled before anything throws: the caller's tear-down must not race a sandbox still being made.
  sandboxMade?.catch(() => undefined);
  const volumes = await settleWith(sandboxMade, prepareVolumes(vmi, {
    client: options.client,
    images: options.images,
    disksDir: layout.disksDir,
    signal: options.signal,
    onPullEvent: options.onPullEvent,
    ...(options.nodeName === undefined ? {} : { nodeName: options.nodeName }),
    ...(options.claimFiles === undefined ? {} : { claimFiles: options.claimFiles }),
  }));
  const volumesMs = Date.now() - started;
  const paths: VmiPaths = {
    dir: layout.dir,
    qmpSocket: layout.qmpSocket,
    serialSocket: layout.serialSocket,
    vncSocket: layout.vncSocket,
    guestAgentSocket: layout.guestAgentSocket,
    pidFile: layout.pidFile,
    disks: volumes.disks,
  };
  if (volumes.keys !== undefined) {
    // Encrypted volumes: their keys reach QEMU only sealed with the VMI's master key (see disk-secrets.ts).
    paths.masterKey = masterKeyPath(layout.dir);
    const masterKey = await ensureMasterKey(paths.masterKey);
    for (const [name, key] of Object.entries(volumes.keys)) {
      const disk = paths.disks[name];
      if (disk !== undefined) paths.disks[name] = { ...disk, encryption: { format: 'luks', key: sealSecret(masterKey, key) } };
    }
  }
  if (volumes.kernel !== undefined) paths.kernel = volumes.kernel;
  if (volumes.initrd !== undefined) paths.initrd = volumes.initrd;
  const varsTemplate = efiVarsTemplate(vmi, options.facts);
  if (varsTemplate !== undefined) {
    paths.efiVars = join(layout.dir, 'efivars.fd');
    await copyFile(varsTemplate, paths.efiVars);
  }
  let exec: string[] = [];
  if (sandboxMade !== undefined) {
    const sandbox = await sandboxMade;
    options.logger.info('pod network sandbox ready', { netns: sandbox.netns, podIps: sandbox.podIps, binding: primary?.nic.binding, secondaryNetworks: sandbox.secondaries.map((l) => l.network), ms: Date.now() - started });
    // The pod NIC first, then the Multus ones (a Multus default network's first among them): eth0, eth1… in the guest.
    paths.nics = nics.pod === undefined ? [] : [nicPaths(nics.pod, sandbox.tap)];
    for (const multus of nics.multus) {
      const link = sandbox.secondaries.find((l) => l.interfaceName === multus.interfaceName);
      if (link === undefined) throw new Error(`the sandbox has no ${multus.interfaceName} for network ${multus.name}`);
      paths.nics.push(nicPaths(multus, link.tap));
    }
    // QEMU opens its tap inside the sandbox; `ip netns exec` execs it, so the pid (and the cgroup attach below) stays QEMU's.
    exec = options.podNetwork.execPrefix(uid);
  }
  const command = buildQemuCommand(vmi, { ...options.facts, now: new Date() }, paths);
  for (const warning of command.warnings) options.logger.warn('VMI field not applied', { warning });
  // Held at the first instruction until the console is attached, so the log has the whole boot.
  const held = command.args.includes('-S') ? command.args : [...command.args, '-S'];
  // The same machine, waiting: the migration controller has it listen once its disks are exported.
  const args = options.incoming === true ? [...held, '-incoming', 'defer'] : held;
  const record: VmiRecord = {
    namespace: vmi.metadata.namespace ?? '',
    name: vmi.metadata.name ?? '',
    uid,
    accel: options.facts.accel,
    accelReason: options.accelReason,
    startedAt: new Date().toISOString(),
  };
  await writeRecord(layout, record);
  const cgroup = vmiCgroupSpec(vmi);
  await options.cgroups.create(uid, cgroup);
  const [program, ...prefix] = [...exec, command.binary];
  const spawned = await spawnQemu(program ?? command.binary, [...prefix, ...args], { logFile: layout.qemuLog, env: command.env });
  const withPid = { ...record, pid: spawned.pid };
  let machine: Machine | undefined;
  try {
    await writeRecord(layout, withPid);
    // QEMU waits at its first instruction (-S) until `cont`, so the guest runs in its cgroup from the start.
    await options.cgroups.attach(uid, spawned.pid);
    options.logger.info('QEMU started', { pid: spawned.pid, accel: options.facts.accel, volumesMs, ms: Date.now() - started });
    machine = await Machine.connect({ key: `${record.namespace}/${record.name}`, layout, record: withPid, logger: options.logger, onChange: options.onChange, onPanic: options.onPanic }, spawned.exited, options.signal);
    const startPaused = stringAt(vmi, 'spec', 'startStrategy') === 'Paused';
    if (machine.runState === 'prelaunch' && !startPaused && options.incoming !== true) {
      await machine.execute('cont');
      await machine.refreshRunState();
    }
    await options.cgroups.settle(uid, cgroup);
    return machine;
  } catch (err) {
    machine?.detach();
    signalQemu(spawned.pid, layout.qmpSocket, 'SIGKILL');
    throw err;
  }
}

/** The pod addresses a migrating VMI keeps (from its status); throws when it has reported none yet. */
function keptPodAddresses(vmi: KObject): string[] {
  const ips = podAddresses(vmi);
  if (ips.length === 0) throw new Error('the VMI reports no pod address in status.interfaces yet, so the target cannot keep it: retry the migration once the VMI is Running with its interfaces');
  return ips;
}

/** `work`'s value, once `companion` (if any) has settled too; `work`'s error first, else `companion`'s. */
async function settleWith<T>(companion: Promise<unknown> | undefined, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } finally {
    await companion?.catch(() => undefined);
  }
}
