/**
 * The agent's VMI reconciler (virt-handler's loop): for one VMI key it
 * decides an action from the VMI and the QEMU the node holds for it
 * (`decideAction`), executes it, and reports the outcome in the VMI's
 * status. It also answers the API server's guest actions and streams.
 */
import { setMaxListeners } from 'node:events';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { ApiError } from '../api/errors.js';
import { isFinal, isMarkedForDeletion, vmiPhase } from '../api/kinds/vm-state.js';
import type { KObject } from '../api/object.js';
import type { Client } from '../client/index.js';
import { resources, splitKey } from '../client/index.js';
import { nodeFencedReason } from '../api/kinds/node-lifecycle.js';
import type { FencedGuest } from './node-fence.js';
import type { EventRecorder } from '../controllers/events/index.js';
import type { ReconcileResult } from '../controllers/queue.js';
import type { Logger } from '../log/logger.js';
import { objectFields } from '../log/logger.js';
import type { Cgroups } from './cgroups.js';
import type { GuestAction, GuestActionParameters } from './handle.js';
import type { ImageStore } from './images/index.js';
import type { ClaimFile } from './volumes.js';
import type { NodeFacts } from './qemu/index.js';
import type { Runtime, VmiAction } from './actions.js';
import { assertNever, decideAction, runtimeUid } from './actions.js';
import { openVnc, performGuestAction } from './guest-access.js';
import { ensureMasterKey, masterKeyPath } from './disk-secrets.js';
import type { HotplugOptions } from './hotplug.js';
import { syncHotplug } from './hotplug.js';
import { dialGuestPort } from './port-forward.js';
import { launchMachine } from './launcher.js';
import type { LaunchOptions } from './launcher.js';
import type { PodNetwork, SandboxState } from '../net/pod/index.js';
import { isDefaultNetworkSandbox } from '../net/pod/index.js';
import { networkStatusAnnotation, networkStatusValue } from '../net/cni/index.js';
import { podInterfaceOf } from './pod-interfaces.js';
import { removeVmiFiles, vmiLayout } from './layout.js';
import type { Machine, MachineExit } from './machine.js';
import { readSerialLog } from './serial-console.js';
import type { AgentEvent } from './vmi-reports.js';
import { endedEvent, endedUpdate, runningUpdate, startProblem, startProblemEvent, startProblemUpdate } from './vmi-reports.js';
import type { StatusUpdate } from './vmi-status.js';
import { agentFinalizer, hasAgentFinalizer, statusPatch } from './vmi-status.js';

/** The node's facts for one start, and why that accelerator. */
export interface StartFacts {
  facts: NodeFacts;
  accelReason: string;
}

/** What the runner needs from the agent. */
export interface VmiRunnerOptions {
  client: Client;
  nodeName: string;
  dataDir: string;
  images: ImageStore;
  /** Where each QEMU is put. */
  cgroups: Cgroups;
  /** The node's pod network: each VMI's sandbox, removed with its cgroup. */
  podNetwork: PodNetwork;
  logger: Logger;
  /** The VMI bound to this node under `key`, from the informer cache. */
  lookup: (key: string) => KObject | undefined;
  /** Queues `key` for reconcile. */
  enqueue: (key: string) => void;
  /** The facts a new guest starts with (accelerator decided, `useEmulation` applied). */
  startFacts: (signal: AbortSignal) => Promise<StartFacts>;
  /** Where the VMI Events go (KubeVirt's virt-handler records them as component `virt-handler`). */
  events: EventRecorder;
  /** False while the node is fenced or its Lease is too old (src/agent/node-fence.ts): no guest starts. Default always true. */
  mayStartGuests?: () => boolean;
  /** Called with each guest panic (`GUEST_PANICKED`) of a guest this runner launched. */
  onPanic?: ((namespace: string, name: string, info: Record<string, unknown> | undefined) => void) | undefined;
}

/** How a guest the node fenced ended, as its VMI reports it. */
const fencedExit: MachineExit = {
  phase: 'Failed',
  reason: nodeFencedReason,
  message: 'the node agent killed this guest itself (self-fencing): it could not renew its Lease on any server for longer than its fencing timeout, so the VM may run on another node now',
};

/** Reconciles the VMIs of one node and holds their runtimes; see the module comment. */
export class VmiRunner {
  /** What the node holds, by VMI uid. */
  private readonly runtimes = new Map<string, Runtime>();
  /** The object our last write returned, by key: fresher than the cache until the watch catches up. */
  private readonly written = new Map<string, KObject>();
  /** Starts that failed for a reason worth retrying, by uid: how often, and not before when. */
  private readonly retries = new Map<string, { failures: number; notBefore: number }>();
  /** VMIs whose guest is migrating off this node, or has left it, by uid (→ key): the migration drives them, not the runner. */
  private readonly away = new Map<string, string>();
  /** Guests that arrived by migration, by uid: held from the moment their VMI is bound to this node. */
  private readonly arrivals = new Map<string, Machine>();
  /** Uids of the guests self-fencing killed: their VMIs end as fenced. */
  private readonly fenced = new Set<string>();
  /** Guests this runner killed because their VMI is being deleted: KubeVirt's `Deleted`, said once, and their end is no crash. */
  private readonly killedForDeletion = new Set<string>();

  constructor(private readonly options: VmiRunnerOptions) {}

  /** Takes over what recovery found. */
  adopt(runtime: Runtime): void {
    this.runtimes.set(runtimeUid(runtime), runtime);
  }

  /**
   * Self-fencing: kills every running guest at once (no ACPI, no grace) and
   * remembers them, so that their VMIs are reported Failed (NodeFenced)
   * once the API answers again.
   */
  async fence(): Promise<FencedGuest[]> {
    const killed: FencedGuest[] = [];
    await Promise.all(
      [...this.runtimes.values()].map(async (runtime) => {
        if (runtime.kind !== 'machine' || runtime.machine.exit !== undefined) return;
        const { machine } = runtime;
        const { namespace, name } = splitKey(machine.key);
        this.fenced.add(machine.record.uid);
        await machine.kill();
        killed.push({ namespace: namespace ?? '', name, uid: machine.record.uid });
      }),
    );
    return killed;
  }

  /** Keys of every VMI the node holds something for. */
  keys(): string[] {
    return [...this.runtimes.values()].map(runtimeKey);
  }

  async reconcile(key: string, signal: AbortSignal): Promise<ReconcileResult | undefined> {
    // One signal for every concurrent reconcile, each start listening on it several times (QMP, tools).
    setMaxListeners(256, signal);
    const vmi = this.fresh(key);
    const uid = vmi?.metadata.uid;
    for (const [awayUid, awayKey] of this.away) {
      // A guest that left is forgotten once its VMI is no longer bound here (or gone).
      if (awayKey === key && awayUid !== uid && !this.runtimes.has(awayUid)) this.away.delete(awayUid);
    }
    if (uid !== undefined && this.away.has(uid)) return undefined;
    const arrival = uid === undefined ? undefined : this.arrivals.get(uid);
    if (uid !== undefined && arrival !== undefined) {
      // The VMI is bound here now (the informer only holds ours): its guest is this node's.
      this.arrivals.delete(uid);
      this.runtimes.set(uid, { kind: 'machine', machine: arrival });
    }
    let result: ReconcileResult | undefined;
    for (const runtime of [...this.runtimes.values()].filter((r) => runtimeKey(r) === key)) {
      if (this.away.has(runtimeUid(runtime))) continue;
      const ours = runtimeUid(runtime) === uid;
      result = merge(result, await this.execute(decideAction(ours ? vmi : undefined, runtime), signal));
    }
    if (uid === undefined || !this.runtimes.has(uid)) {
      const latest = this.fresh(key);
      if (latest?.metadata.uid === uid) result = merge(result, await this.execute(decideAction(latest, undefined), signal));
    }
    return result;
  }

  /** Leaves VMI `uid` to its outgoing migration: no status, no start, no cleanup until {@link migrationEnded}. */
  holdForMigration(key: string, uid: string): void {
    this.away.set(uid, key);
  }

  /** The outgoing migration of `uid` ended without moving the guest: the runner takes it back. */
  migrationEnded(uid: string): void {
    const key = this.away.get(uid);
    this.away.delete(uid);
    if (key !== undefined) this.options.enqueue(key);
  }

  /**
   * The guest of `uid` left for another node: the runner forgets its QEMU
   * (the caller quits it) and ignores its VMI until it is bound elsewhere.
   */
  handOver(uid: string): Machine | undefined {
    const runtime = this.runtimes.get(uid);
    this.runtimes.delete(uid);
    this.retries.delete(uid);
    return runtime?.kind === 'machine' ? runtime.machine : undefined;
  }

  /**
   * Starts the target QEMU of an incoming migration of `vmi`: the same
   * machine, its disks made fresh on this node (`claimFiles` in place of
   * its claims' volumes), waiting for the guest. The runner does not hold
   * it until {@link adoptIncoming}.
   */
  async launchIncoming(vmi: KObject, signal: AbortSignal, claimFiles?: Record<string, ClaimFile>): Promise<Machine> {
    const key = keyOf(vmi);
    const uid = vmi.metadata.uid ?? '';
    const { facts, accelReason } = await this.options.startFacts(signal);
    try {
      return await launchMachine(vmi, { ...this.launchOptions(vmi, key, { facts, accelReason }, this.objectLogger(vmi), signal), incoming: true, ...(claimFiles === undefined ? {} : { claimFiles }) });
    } catch (err) {
      await this.removeGuestFiles(uid);
      throw err;
    }
  }

  /** What launching `vmi`'s QEMU needs of this runner; image pulls are recorded on the VMI, as the kubelet records them on the launcher pod. */
  private launchOptions(vmi: KObject, key: string, start: Pick<LaunchOptions, 'facts' | 'accelReason'>, logger: Logger, signal: AbortSignal): LaunchOptions {
    return {
      client: this.options.client,
      images: this.options.images,
      dataDir: this.options.dataDir,
      cgroups: this.options.cgroups,
      podNetwork: this.options.podNetwork,
      ...start,
      logger,
      onChange: () => { this.options.enqueue(key); },
      onPanic: (info) => { this.options.onPanic?.(vmi.metadata.namespace ?? '', vmi.metadata.name ?? '', info); },
      onPullEvent: (event) => { this.event(vmi, event); },
      nodeName: this.options.nodeName,
      signal,
    };
  }

  /** The guest of an incoming migration arrived and runs: the runner takes it once its VMI is bound to this node. */
  arrived(machine: Machine): void {
    this.arrivals.set(machine.record.uid, machine);
    this.options.enqueue(machine.key);
  }

  /**
   * Removes a migrated guest's directory and cgroup on this node. The
   * cgroup may still hold the other side's QEMU when both nodes share a
   * machine (lab hosts): then it stays for that one to remove.
   */
  async removeGuestFiles(uid: string): Promise<void> {
    await rm(vmiLayout(this.options.dataDir, uid).dir, { recursive: true, force: true });
    try {
      await this.options.cgroups.remove(uid);
    } catch (err) {
      this.options.logger.info('the cgroup of a migrated guest stays (another QEMU of the VMI is in it)', { uid, err });
    }
    // The sandbox of a target given up, or what is left of a source's (a departed lease stays: the VMI keeps its addresses).
    await this.options.podNetwork.tearDown(uid, AbortSignal.timeout(30_000), { keepDeparted: true });
  }

  sandboxed(uid: string): boolean {
    return this.options.podNetwork.sandboxStates().has(uid);
  }

  networkArrived(uid: string, signal: AbortSignal): Promise<void> {
    return this.options.podNetwork.arrive(uid, signal);
  }

  networkDeparted(uid: string, signal: AbortSignal): Promise<void> {
    return this.options.podNetwork.depart(uid, signal);
  }

  /** Every guest running here with its VMI, for the metrics; the targets of incoming migrations are not the node's yet. */
  runningGuests(): { vmi: KObject; machine: Machine; cgroupDirs: string[]; sandbox: SandboxState | undefined }[] {
    const guests: { vmi: KObject; machine: Machine; cgroupDirs: string[]; sandbox: SandboxState | undefined }[] = [];
    const sandboxes = this.options.podNetwork.sandboxStates();
    for (const runtime of this.runtimes.values()) {
      if (runtime.kind !== 'machine' || runtime.machine.exit !== undefined) continue;
      const { machine } = runtime;
      const vmi = this.fresh(machine.key);
      if (vmi === undefined || vmi.metadata.uid !== machine.record.uid) continue;
      guests.push({ vmi, machine, cgroupDirs: this.options.cgroups.paths(machine.record.uid), sandbox: sandboxes.get(machine.record.uid) });
    }
    return guests;
  }

  /** The running machine of VMI `namespace/name`, if this node runs it. */
  liveMachine(namespace: string, name: string): Machine | undefined {
    const uid = this.fresh(`${namespace}/${name}`)?.metadata.uid;
    const runtime = uid === undefined ? undefined : this.runtimes.get(uid);
    return runtime?.kind === 'machine' && runtime.machine.exit === undefined ? runtime.machine : undefined;
  }

  async guestAction(namespace: string, name: string, action: GuestAction, parameters: GuestActionParameters = {}): Promise<void> {
    await performGuestAction(this.requireRunning(namespace, name), action, parameters);
  }

  async openStream(namespace: string, name: string, kind: 'console' | 'vnc'): Promise<Duplex> {
    const machine = this.requireRunning(namespace, name);
    return kind === 'console' ? machine.console.subscribe() : openVnc(machine);
  }

  async openPortForward(namespace: string, name: string, port: number): Promise<Duplex> {
    this.requireRunning(namespace, name);
    const vmi = this.fresh(`${namespace}/${name}`);
    if (vmi === undefined) throw new ApiError('Conflict', 'VMI is not running');
    return dialGuestPort(vmi, port);
  }

  serialLog(namespace: string, name: string): string {
    const uid = this.fresh(`${namespace}/${name}`)?.metadata.uid;
    if (uid === undefined) throw new ApiError('Conflict', 'VMI is not running');
    const runtime = this.runtimes.get(uid);
    if (runtime?.kind === 'machine') return runtime.machine.console.readLog();
    const layout = vmiLayout(this.options.dataDir, uid);
    // The log of a guest that has ended stays until its VMI is deleted.
    if (!existsSync(layout.serialLog)) throw new ApiError('Conflict', 'VMI is not running');
    return readSerialLog(layout.serialLog);
  }

  /**
   * Lets go of every QEMU (the guests run on), or kills them all with
   * `stopGuests`; their directories stay for the next agent to report, but
   * not their cgroups, which nothing would use again. The node bridge and
   * table stay for the guests that run on, and go when no sandbox is left.
   */
  async stop(options: { stopGuests: boolean }): Promise<void> {
    for (const runtime of this.runtimes.values()) {
      if (runtime.kind !== 'machine') continue;
      const { machine } = runtime;
      if (options.stopGuests && machine.exit === undefined) {
        try {
          await machine.kill();
          await this.options.cgroups.remove(machine.record.uid);
        } catch (err) {
          this.machineLogger(machine).error('cannot stop a guest', { err, pid: machine.pid });
        }
      }
      machine.detach();
    }
    this.runtimes.clear();
    for (const machine of this.arrivals.values()) {
      if (options.stopGuests) await machine.kill().catch((err: unknown) => { this.machineLogger(machine).error('cannot stop a migrated guest', { err, pid: machine.pid }); });
      machine.detach();
    }
    this.arrivals.clear();
    if (options.stopGuests) {
      // Nothing runs any more: the sandboxes and the node bridge go too (the next agent makes them again).
      try {
        const signal = AbortSignal.timeout(30_000);
        await this.options.podNetwork.sweep(new Set(), signal);
        await this.options.podNetwork.removeNode(signal);
      } catch (err) {
        this.options.logger.error('cannot remove the pod network', { err });
      }
    } else if (this.options.podNetwork.sandboxStates().size === 0 && this.options.podNetwork.isUp()) {
      // No guest uses the pod network: an idle agent leaves the host as it found it (the next sandbox makes the bridge again).
      try {
        await this.options.podNetwork.removeNode(AbortSignal.timeout(30_000));
      } catch (err) {
        this.options.logger.error('cannot remove the pod network', { err });
      }
    }
  }

  private requireRunning(namespace: string, name: string): Machine {
    const machine = this.liveMachine(namespace, name);
    if (machine === undefined) throw new ApiError('Conflict', 'VMI is not running');
    return machine;
  }

  private execute(action: VmiAction, signal: AbortSignal): Promise<ReconcileResult | undefined> {
    switch (action.kind) {
      case 'start':
        return this.start(action.vmi, signal);
      case 'observe':
        return this.observe(action.vmi, action.machine, signal);
      case 'shutdown':
        return this.shutdown(action.machine, action.graceSeconds, signal);
      case 'cleanup':
        return this.cleanup(action.vmi, action.uid, action.exit);
      case 'none':
        return Promise.resolve(undefined);
      default:
        return assertNever(action);
    }
  }

  private async start(vmi: KObject, signal: AbortSignal): Promise<ReconcileResult | undefined> {
    const key = keyOf(vmi);
    const uid = vmi.metadata.uid ?? '';
    const logger = this.objectLogger(vmi);
    // Our own status write wakes the key again: the backoff holds regardless.
    const wait = (this.retries.get(uid)?.notBefore ?? 0) - Date.now();
    if (wait > 0) return { requeueAfter: wait };
    if (this.options.mayStartGuests?.() === false) {
      logger.warn('not starting the guest: the node is fenced or its Lease is not renewed (the server may run this VM elsewhere)');
      return { requeueAfter: 1_000 };
    }
    // The finalizer first: from here on the node may hold files or a process the VMI must not outlive.
    const current = hasAgentFinalizer(vmi) ? vmi : await this.patchVmi(vmi, { metadata: { resourceVersion: vmi.metadata.resourceVersion, finalizers: [...(vmi.metadata.finalizers ?? []), agentFinalizer] } });
    const { facts, accelReason } = await this.options.startFacts(signal);
    let machine: Machine;
    try {
      machine = await launchMachine(current, this.launchOptions(current, key, { facts, accelReason }, logger, signal));
    } catch (err) {
      return this.startFailed(current, err, signal);
    }
    this.runtimes.set(uid, { kind: 'machine', machine });
    this.retries.delete(uid);
    this.event(current, { type: 'Normal', reason: 'Created', message: 'VirtualMachineInstance defined.' });
    if (this.options.mayStartGuests?.() === false) {
      // Fenced while QEMU was starting: it must not run on.
      logger.warn('killing a guest that started while the node fenced itself');
      this.fenced.add(uid);
      await machine.kill();
      return undefined;
    }
    return this.observe(current, machine, signal);
  }

  private async startFailed(vmi: KObject, err: unknown, signal: AbortSignal): Promise<ReconcileResult | undefined> {
    const uid = vmi.metadata.uid ?? '';
    await rm(vmiLayout(this.options.dataDir, uid).dir, { recursive: true, force: true });
    try {
      await this.options.cgroups.remove(uid);
    } catch (cgroupErr) {
      this.objectLogger(vmi).warn('the cgroup of a failed start stays behind', { err: cgroupErr });
    }
    try {
      await this.options.podNetwork.tearDown(uid, AbortSignal.timeout(30_000));
    } catch (networkErr) {
      this.objectLogger(vmi).warn('the network sandbox of a failed start stays behind', { err: networkErr });
    }
    if (signal.aborted) throw err;
    const failures = this.retries.get(uid)?.failures ?? 0;
    const problem = startProblem(err, failures);
    const logger = this.objectLogger(vmi);
    await this.writeStatus(vmi, startProblemUpdate(problem));
    this.event(vmi, startProblemEvent(problem));
    switch (problem.kind) {
      case 'retry':
        // Our own status write wakes the key at once; `retries` holds the backoff.
        this.retries.set(uid, { failures: failures + 1, notBefore: Date.now() + problem.delayMs });
        logger.info('VMI cannot start yet', { reason: problem.reason, message: problem.message, retryInMs: problem.delayMs });
        return { requeueAfter: problem.delayMs };
      case 'fail':
        logger.warn('VMI failed to start', { message: problem.message });
        return undefined;
      case 'error':
        logger.warn('VMI start failed; retrying', { err });
        throw err;
      default:
        return assertNever(problem);
    }
  }

  private async observe(vmi: KObject, machine: Machine, signal: AbortSignal): Promise<ReconcileResult | undefined> {
    const before = vmiPhase(vmi);
    const update = runningUpdate(vmi, machine, this.options.nodeName);
    const sandbox = await this.options.podNetwork.state(machine.record.uid);
    let current = vmi;
    if (sandbox !== undefined) {
      update.fields = { ...update.fields, interfaces: interfaceStatuses(vmi, sandbox) };
      current = await this.writeNetworkStatus(vmi, sandbox);
    }
    const hotplug = await syncHotplug(current, machine, this.hotplugOptions(machine, signal));
    await this.writeStatus(hotplug.vmi, { ...update, fields: { ...update.fields, volumeStatus: hotplug.volumeStatus } });
    if (before !== 'Running') {
      this.objectLogger(vmi).info('VMI running', { pid: machine.pid, accel: machine.record.accel });
      this.event(vmi, { type: 'Normal', reason: 'Started', message: 'VirtualMachineInstance started.' });
    }
    return hotplug.requeueAfter === undefined ? undefined : { requeueAfter: hotplug.requeueAfter };
  }

  private hotplugOptions(machine: Machine, signal: AbortSignal): HotplugOptions {
    return {
      client: this.options.client,
      images: this.options.images,
      nodeName: this.options.nodeName,
      disksDir: machine.layout.disksDir,
      masterKey: () => ensureMasterKey(masterKeyPath(machine.layout.dir)),
      logger: this.machineLogger(machine),
      report: (vmi, volumeStatus) => this.writeStatus(vmi, { fields: { volumeStatus } }),
      event: (vmi, type, reason, message) => { this.event(vmi, { type, reason, message }); },
      signal,
    };
  }

  private async shutdown(machine: Machine, graceSeconds: number, signal: AbortSignal): Promise<ReconcileResult | undefined> {
    const graceMs = graceSeconds * 1000;
    if (graceMs > 0 && machine.powerdownRequestedAt === undefined) {
      try {
        await machine.requestPowerdown();
        this.machineLogger(machine).info('asked the guest to power off', { graceSeconds });
        this.event(this.options.lookup(machine.key), { type: 'Normal', reason: 'ShuttingDown', message: 'Signaled Graceful Shutdown' });
        return { requeueAfter: graceMs };
      } catch (err) {
        this.machineLogger(machine).warn('ACPI power-off failed; killing QEMU', { err });
      }
    }
    const elapsed = machine.powerdownRequestedAt === undefined ? graceMs : Date.now() - machine.powerdownRequestedAt;
    if (elapsed < graceMs) return { requeueAfter: graceMs - elapsed };
    this.machineLogger(machine).info('killing QEMU', { pid: machine.pid });
    if (!this.killedForDeletion.has(machine.record.uid)) {
      this.killedForDeletion.add(machine.record.uid);
      this.event(this.options.lookup(machine.key), { type: 'Normal', reason: 'Deleted', message: 'Signaled Deletion' });
    }
    // The exit is reported through the machine's onChange, which queues the cleanup.
    await machine.kill(signal);
    return undefined;
  }

  private async cleanup(vmi: KObject | undefined, uid: string, reported: MachineExit | undefined): Promise<ReconcileResult | undefined> {
    const exit = reported !== undefined && this.fenced.has(uid) ? fencedExit : reported;
    const runtime = this.runtimes.get(uid);
    if (runtime?.kind === 'machine') runtime.machine.detach();
    let current = vmi?.metadata.uid === uid ? vmi : undefined;
    if (current !== undefined && exit !== undefined && !isFinal(current)) {
      current = await this.writeStatus(current, endedUpdate(exit));
      this.objectLogger(current).info('VMI ended', { phase: exit.phase, message: exit.message });
      this.event(current, endedEvent(exit, { killedForDeletion: this.killedForDeletion.has(uid) }));
    } else if (current !== undefined && exit === fencedExit) {
      // The server failed it first (NodeUnresponsive): the fencing is still worth saying.
      this.event(current, endedEvent(exit));
    }
    // An ended guest's console log stays until its VMI is deleted (a launcher pod's logs stay as long), and so does the finalizer.
    // Not for a fenced guest: the server has likely failed its VMI and released the finalizer already (src/controllers/nodelifecycle), so no deletion would come to remove the log.
    const ended = current !== undefined && !isMarkedForDeletion(current) && isFinal(current) && exit !== fencedExit;
    const logKept = await removeVmiFiles(vmiLayout(this.options.dataDir, uid), { keepSerialLog: ended });
    // Throws while a process still holds the cgroup: the cleanup is retried.
    await this.options.cgroups.remove(uid);
    await this.options.podNetwork.tearDown(uid, AbortSignal.timeout(30_000));
    this.runtimes.delete(uid);
    this.retries.delete(uid);
    this.fenced.delete(uid);
    this.killedForDeletion.delete(uid);
    if (current === undefined) return undefined;
    if (isMarkedForDeletion(current) || isFinal(current)) {
      if (hasAgentFinalizer(current) && !logKept) {
        const finalizers = (current.metadata.finalizers ?? []).filter((f) => f !== agentFinalizer);
        await this.patchVmi(current, { metadata: { resourceVersion: current.metadata.resourceVersion, finalizers } });
      }
      return undefined;
    }
    // A start interrupted by an agent restart: start again.
    return { requeueAfter: 0 };
  }

  /** Multus' `network-status` annotation on a VMI with Multus NICs (the pod network first), written when it differs. */
  private async writeNetworkStatus(vmi: KObject, sandbox: SandboxState): Promise<KObject> {
    if (sandbox.secondaries.length === 0) return vmi;
    const value = networkStatusOf(sandbox);
    if (vmi.metadata.annotations?.[networkStatusAnnotation] === value) return vmi;
    return this.patchVmi(vmi, { metadata: { annotations: { [networkStatusAnnotation]: value } } });
  }

  private async writeStatus(vmi: KObject, update: StatusUpdate): Promise<KObject> {
    const patch = statusPatch(vmi, update);
    // KubeVirt gives VMIs no status subresource: virt-handler writes the status on the object itself.
    return patch === undefined ? vmi : this.patchVmi(vmi, patch);
  }

  private async patchVmi(vmi: KObject, body: Record<string, unknown>): Promise<KObject> {
    try {
      const updated = await this.options.client.patch(resources.virtualMachineInstances, vmi.metadata.namespace, vmi.metadata.name ?? '', 'merge', body);
      this.written.set(keyOf(vmi), updated);
      return updated;
    } catch (err) {
      // Deleted meanwhile (its last finalizer went): nothing left to write.
      if (err instanceof ApiError && err.reason === 'NotFound') return vmi;
      throw err;
    }
  }

  /** The cached VMI, or the one our last write returned when that is newer. */
  private fresh(key: string): KObject | undefined {
    const cached = this.options.lookup(key);
    const written = this.written.get(key);
    if (cached === undefined || written === undefined || written.metadata.uid !== cached.metadata.uid) {
      this.written.delete(key);
      return cached;
    }
    if (revision(written) > revision(cached)) return written;
    this.written.delete(key);
    return cached;
  }

  private event(vmi: KObject | undefined, event: AgentEvent): void {
    if (vmi !== undefined) this.options.events.record(vmi, event.type, event.reason, event.message);
  }

  private objectLogger(vmi: KObject): Logger {
    return this.options.logger.child(objectFields(vmi));
  }

  /** A logger naming the VMI a machine runs, from its record (the VMI itself may be gone). */
  private machineLogger(machine: Machine): Logger {
    const { namespace, name, uid } = machine.record;
    return this.options.logger.child({ kind: 'VirtualMachineInstance', namespace, name, uid });
  }
}

/**
 * `status.interfaces` as KubeVirt reports the pod NIC: its name, MAC, the
 * pod addresses (for masquerade, both families: what others reach the VMI
 * on; for bridge, the IPv4 address the guest holds, as it gets no IPv6 one),
 * the guest's interface name, and where the facts come from.
 */
function interfaceStatuses(vmi: KObject, sandbox: SandboxState): Record<string, unknown>[] {
  let name = 'default';
  try {
    name = podInterfaceOf(vmi)?.name ?? name;
  } catch {
    // the spec was read when the sandbox was made
  }
  const secondaries = sandbox.secondaries.map((link) => {
    const ips = link.addresses.map(withoutPrefix);
    return { name: link.name, mac: link.mac, ...(ips.length === 0 ? {} : { ipAddress: ips[0], ipAddresses: ips }), interfaceName: link.interfaceName, infoSource: 'domain', linkState: 'up', queueCount: 1 };
  });
  // On a Multus default network there is no pod NIC: its NIC (eth0) leads the Multus ones.
  if (isDefaultNetworkSandbox(sandbox)) return secondaries;
  const ips = sandbox.binding === 'masquerade' ? sandbox.podIps : sandbox.guestIps;
  return [{
    name,
    mac: sandbox.mac,
    ipAddress: ips[0],
    ipAddresses: ips,
    interfaceName: 'eth0',
    infoSource: 'domain',
    linkState: 'up',
    queueCount: 1,
  }, ...secondaries];
}

/** The cluster network's name in the network-status annotation (Multus writes its default delegate's CNI name there). */
const podNetworkName = 'vireo-pod-network';

/** Multus' annotation value: the pod network, then each NAD with the addresses the guest holds. */
function networkStatusOf(sandbox: SandboxState): string {
  return networkStatusValue({
    ...(isDefaultNetworkSandbox(sandbox)
      ? { defaultNetwork: sandbox.secondaries.find((link) => link.interfaceName === 'eth0')?.network ?? '' }
      : { podNetwork: { name: podNetworkName, interface: 'eth0', ips: sandbox.podIps, mac: sandbox.mac } }),
    attachments: sandbox.secondaries.map((link) => ({
      network: link.network,
      interfaceName: link.interfaceName,
      result: {
        cniVersion: '1.0.0',
        interfaces: [{ name: link.interfaceName, sandbox: sandbox.netns, ...(link.interfaceMac === undefined ? {} : { mac: link.interfaceMac }) }],
        ips: link.addresses.map((address) => ({ address, interface: 0 })),
        routes: [],
        dns: link.dns,
        raw: {},
      },
    })),
  });
}

function withoutPrefix(address: string): string {
  const slash = address.indexOf('/');
  return slash < 0 ? address : address.slice(0, slash);
}

function runtimeKey(runtime: Runtime): string {
  return runtime.kind === 'machine' ? runtime.machine.key : runtime.key;
}

function keyOf(vmi: KObject): string {
  return `${vmi.metadata.namespace ?? ''}/${vmi.metadata.name ?? ''}`;
}

function revision(obj: KObject): number {
  const rv = Number(obj.metadata.resourceVersion ?? '');
  return Number.isFinite(rv) ? rv : 0;
}

/** The sooner of two requeue requests. */
function merge(a: ReconcileResult | undefined, b: ReconcileResult | undefined): ReconcileResult | undefined {
  if (a?.requeueAfter === undefined) return b ?? a;
  if (b?.requeueAfter === undefined) return a;
  return { requeueAfter: Math.min(a.requeueAfter, b.requeueAfter) };
}
