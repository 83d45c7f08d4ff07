/**
 * The VirtualMachine controller, after KubeVirt's `pkg/virt-controller/
 * watch/vm`: for every VM, one level-based pass reads the VM and the VMI of
 * the same name from the caches, takes one step toward what the run
 * strategy and the pending start/stop requests ask (create the VMI from the
 * template with its instancetype and preference expanded, or delete it),
 * and writes the VM's status through the status subresource.
 */
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { arrayAt, has, recordAt, stringAt } from '../../api/kinds/read.js';
import type { Client } from '../../client/index.js';
import { Informer, resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { WorkQueue } from '../queue.js';
import { ControllerLoop } from '../loop.js';
import type { ReconcileResult } from '../queue.js';
import { EventRecorder } from '../events/index.js';
import { controllerRefOf, controllerRefTo, errorMessage, isControlledBy, isMarkedForDeletion, logFieldsOf, vmiPhase } from '../vmi/index.js';
import { applyMatchers, resolveMatchers } from './instancetype.js';
import type { Resolved } from './instancetype.js';
import { compileOptions } from './options.js';
import type { CompiledOptions, VirtualMachineControllerOptions } from './options.js';
import { decide, lastRunStrategyOf, runStrategyOf, stateChangeRequestsOf, trimRequests } from './run-strategy.js';
import type { Decision, RunStrategy, StateChangeRequest } from './run-strategy.js';
import { backoffLeftMs, nextStartFailure, startFailureOf } from './start-failure.js';
import type { StartFailure } from './start-failure.js';
import { computeStatus, statusChanged } from './status.js';
import type { MatcherRef, SyncError } from './status.js';
import { annotations, buildVmi, defaultInputs, templateHash } from './vmi-builder.js';
import { dataVolumeFromTemplate, dataVolumeStateOf, dataVolumeTemplatesOf, isStartable } from './datavolumes.js';

/** What one pass over a VM has found and done so far. */
interface Pass {
  vm: KObject;
  /** The VMI after this pass's action: the one created, or the one asked to stop. */
  vmi: KObject | undefined;
  strategy: RunStrategy | undefined;
  stopExpected: boolean;
  requests: StateChangeRequest[];
  startFailure: StartFailure | undefined;
  syncError: SyncError | undefined;
  refs: { instancetype: MatcherRef | undefined; preference: MatcherRef | undefined };
  requeueAfter: number | undefined;
  /** Every DataVolume of `spec.dataVolumeTemplates` exists and lets the VMI start. */
  dataVolumesReady: boolean;
  log: Logger;
}

/** KubeVirt's VM finalizer: the VM controller holds a deleted VM until its VMI is gone. */
export const vmFinalizer = 'kubevirt.io/virtualMachineControllerFinalize';
/** Kubernetes' finalizer of an object deleted with `propagationPolicy: Orphan`. */
const orphanFinalizer = 'orphan';

/** Runs VirtualMachines: keeps each VM's VMI in line with its run strategy, and its status true. */
export class VirtualMachineController {
  private readonly vms: Informer;
  private readonly vmis: Informer;
  private readonly dvs: Informer;
  private readonly loop: ControllerLoop;
  private readonly recorder: EventRecorder;
  private readonly queue: WorkQueue;
  private readonly options: CompiledOptions;

  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
    options: VirtualMachineControllerOptions = {},
  ) {
    this.options = compileOptions(options);
    this.recorder = options.recorder ?? new EventRecorder(client, 'virtualmachine-controller', logger);
    this.queue = new WorkQueue((key) => this.reconcile(key), { logger, concurrency: this.options.concurrency, baseDelayMs: 100, maxDelayMs: 60_000, objectOf: (key) => this.vms.get(key) });
    this.loop = new ControllerLoop(this.queue, this.recorder);
    this.vms = this.loop.informer(options.vmInformer, () => new Informer(client, resources.virtualMachines, logger));
    this.vmis = this.loop.informer(options.vmiInformer, () => new Informer(client, resources.virtualMachineInstances, logger));
    this.dvs = this.loop.informer(options.dataVolumeInformer, () => new Informer(client, resources.dataVolumes, logger));
    this.vms.onChange((key) => { this.queue.add(key); });
    this.dvs.onChange((key) => { this.onDataVolumeChange(key); });
    // A VM's VMI has the VM's name: a VMI's key is its VM's key, even once the VMI is gone.
    this.vmis.onChange((key) => { this.queue.add(key); });
  }

  /** Fills the caches, then reconciles every VM and every change. */
  async start(): Promise<void> {
    await this.loop.start();
    this.logger.info('virtual machine controller started');
  }

  /** Stops reconciling, waits for running passes, and flushes pending events. */
  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /** A DataVolume wakes the VM that owns it, and any VM in its namespace whose template uses it. */
  private onDataVolumeChange(key: string): void {
    const [namespace, name] = key.split('/');
    const dv = this.dvs.get(key);
    const ref = dv === undefined ? undefined : controllerRefOf(dv);
    if (ref?.kind === 'VirtualMachine') this.queue.add(`${namespace ?? ''}/${ref.name}`);
    for (const vm of this.vms.list()) {
      if (vm.metadata.namespace !== namespace) continue;
      if (arrayAt(vm, 'spec', 'template', 'spec', 'volumes').some((v) => recordAt(v, 'dataVolume')?.name === name)) this.queue.add(`${namespace}/${vm.metadata.name ?? ''}`);
    }
  }

  private async reconcile(key: string): Promise<ReconcileResult> {
    const vm = this.vms.get(key);
    if (vm === undefined) return {};
    const now = this.options.now();
    const parsed = runStrategyOf(vm);
    const strategy = 'strategy' in parsed ? parsed.strategy : undefined;
    const pass: Pass = {
      vm,
      vmi: this.vmis.get(key),
      strategy,
      stopExpected: false,
      requests: stateChangeRequestsOf(vm),
      startFailure: undefined,
      syncError: undefined,
      refs: { instancetype: undefined, preference: undefined },
      requeueAfter: undefined,
      dataVolumesReady: true,
      log: this.logger.child(logFieldsOf(vm)),
    };
    // The finalizer first: from here on the VM outlives its VMI, so no VMI is ever made for a VM already gone.
    if (!isMarkedForDeletion(vm) && !vm.metadata.finalizers?.includes(vmFinalizer)) pass.vm = await this.addFinalizer(vm);
    const mine = await this.claim(pass);
    if (!isMarkedForDeletion(vm) && mine) await this.ensureDataVolumes(pass);
    pass.startFailure = nextStartFailure(startFailureOf(vm), pass.vmi, strategy, now, this.options.backoff);
    if (isMarkedForDeletion(vm)) {
      // Orphaning dependents (`--cascade=orphan`) leaves the guest running, as in KubeVirt.
      const orphaning = vm.metadata.finalizers?.includes(orphanFinalizer) === true;
      if (mine && !orphaning && pass.vmi !== undefined && !isMarkedForDeletion(pass.vmi)) await this.stopVmi(pass);
      if (!mine || orphaning || pass.vmi === undefined) {
        await this.releaseFinalizer(vm);
        return {};
      }
    } else if (!mine) {
      pass.vmi = undefined;
      pass.syncError = { reason: 'FailedCreate', message: `VirtualMachineInstance ${vm.metadata.name ?? ''} exists and is controlled by another object: delete it, or rename the VM`, terminal: true };
    } else if ('error' in parsed) {
      pass.syncError = { reason: 'FailedCreate', message: parsed.error, terminal: true };
    } else {
      const resolved = await resolveMatchers(this.client, vm);
      if ('reason' in resolved) {
        pass.syncError = resolved;
      } else {
        pass.refs = { instancetype: resolved.instancetype?.ref, preference: resolved.preference?.ref };
        const decision = decide({ strategy: parsed.strategy, vmi: pass.vmi, requests: pass.requests, lastRunStrategy: lastRunStrategyOf(vm), backoffLeftMs: backoffLeftMs(pass.startFailure, now) });
        // A spec change starts a fresh pass through the informer.
        if (!(await this.act(decision, pass, resolved))) return {};
      }
    }
    if (pass.vmi !== undefined && !pass.stopExpected) pass.vmi = await this.syncGeneration(pass.vm, pass.vmi);
    pass.requests = trimRequests(pass.requests, pass.vmi);
    await this.writeStatus(pass, now);
    if (pass.requeueAfter !== undefined) return { requeueAfter: pass.requeueAfter };
    return pass.syncError !== undefined && !pass.syncError.terminal ? { requeue: true } : {};
  }

  private async addFinalizer(vm: KObject): Promise<KObject> {
    return this.client.patch(resources.virtualMachines, vm.metadata.namespace, vm.metadata.name ?? '', 'merge', {
      metadata: { resourceVersion: vm.metadata.resourceVersion, finalizers: [...(vm.metadata.finalizers ?? []), vmFinalizer] },
    });
  }

  /** Lets a deleted VM go once its VMI is gone (or is not its to stop). */
  private async releaseFinalizer(vm: KObject): Promise<void> {
    if (!vm.metadata.finalizers?.includes(vmFinalizer)) return;
    const finalizers = vm.metadata.finalizers.filter((f) => f !== vmFinalizer);
    try {
      await this.client.patch(resources.virtualMachines, vm.metadata.namespace, vm.metadata.name ?? '', 'merge', { metadata: { resourceVersion: vm.metadata.resourceVersion, finalizers } });
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
    }
  }

  /**
   * Makes sure the VMI of the VM's name is the VM's: an orphan is adopted
   * (as KubeVirt's `ClaimVirtualMachineInstanceByName` does); false when
   * another controller owns it.
   */
  private async claim(pass: Pass): Promise<boolean> {
    const vmi = pass.vmi;
    if (vmi === undefined || isControlledBy(vmi, pass.vm)) return true;
    if (controllerRefOf(vmi) !== undefined) return false;
    if (isMarkedForDeletion(vmi) || isMarkedForDeletion(pass.vm)) return false;
    const refs = [...(vmi.metadata.ownerReferences ?? []), controllerRefTo(pass.vm)];
    pass.vmi = await this.client.patch(resources.virtualMachineInstances, vmi.metadata.namespace, vmi.metadata.name ?? '', 'merge', {
      metadata: { resourceVersion: vmi.metadata.resourceVersion, ownerReferences: refs },
    });
    pass.log.info('adopted orphaned VMI', { vmi: vmi.metadata.uid });
    return true;
  }

  /** Carries out `decision`; false when it changed the VM's spec (the pass ends there). */
  private async act(decision: Decision, pass: Pass, resolved: Resolved): Promise<boolean> {
    switch (decision.action) {
      case 'none':
        return true;
      case 'wait':
        pass.log.info('delaying start: crash-loop backoff', { waitMs: decision.ms, failures: pass.startFailure?.consecutiveFailCount });
        pass.requeueAfter = decision.ms;
        return true;
      case 'start':
        await this.startVmi(pass, resolved, decision.paused);
        return true;
      case 'stop':
        if (decision.rerun) await this.requestRerun(pass);
        await this.stopVmi(pass);
        return true;
      case 'runAlways': {
        const spec = has(pass.vm, 'spec', 'running') ? { running: true } : { runStrategy: 'Always' };
        await this.client.patch(resources.virtualMachines, pass.vm.metadata.namespace, pass.vm.metadata.name ?? '', 'merge', { metadata: { resourceVersion: pass.vm.metadata.resourceVersion }, spec });
        pass.log.info('start requested on a Halted VM: run strategy now Always');
        return false;
      }
    }
  }

  private async startVmi(pass: Pass, resolved: Resolved, paused: boolean): Promise<void> {
    if (!pass.dataVolumesReady) {
      // As KubeVirt: the VMI waits for its DataVolumes; their changes wake this VM again.
      pass.log.info('waiting on DataVolumes to be ready before creating the VMI');
      return;
    }
    const vmi = buildVmi(pass.vm, { paused });
    const conflicts = applyMatchers(resolved, vmi);
    if (conflicts.length > 0) {
      const message = `VM field(s) ${conflicts.join(', ')} conflicts with selected instance type: remove them from the template, or drop spec.instancetype`;
      pass.syncError = { reason: 'FailedCreate', message, terminal: true };
      this.recorder.record(pass.vm, 'Warning', 'FailedCreate', `Error creating virtual machine instance: ${message}`);
      return;
    }
    const spec = recordAt(vmi, 'spec');
    if (spec !== undefined) defaultInputs(spec);
    try {
      pass.vmi = await this.client.create(resources.virtualMachineInstances, vmi);
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'AlreadyExists') {
        // The cache was behind: take the VMI that is there, if it is ours.
        const existing = await this.client.tryGet(resources.virtualMachineInstances, vmi.metadata.namespace, vmi.metadata.name ?? '');
        if (existing !== undefined && isControlledBy(existing, pass.vm)) {
          pass.vmi = existing;
          return;
        }
      }
      const message = errorMessage(err);
      pass.syncError = { reason: 'FailedCreate', message: `Failure while starting VMI: ${message}`, terminal: err instanceof ApiError && ['Invalid', 'BadRequest', 'Forbidden'].includes(err.reason) };
      this.recorder.record(pass.vm, 'Warning', 'FailedCreate', `Error creating virtual machine instance: ${message}`);
      pass.log.warn('could not create VMI', { err: message });
      return;
    }
    pass.log.info('started VM by creating its VMI', { vmi: pass.vmi.metadata.uid, strategy: pass.strategy });
    this.recorder.record(pass.vm, 'Normal', 'SuccessfulCreate', `Started the virtual machine by creating the new virtual machine instance ${pass.vmi.metadata.name ?? ''}`);
  }

  /**
   * Creates the DataVolumes of `spec.dataVolumeTemplates` that are missing,
   * owned by the VM, and notes whether all of them let the VMI start.
   */
  private async ensureDataVolumes(pass: Pass): Promise<void> {
    const namespace = pass.vm.metadata.namespace ?? 'default';
    for (const template of dataVolumeTemplatesOf(pass.vm)) {
      const dv = dataVolumeFromTemplate(pass.vm, template);
      const name = dv.metadata.name ?? '';
      const existing = this.dvs.get(`${namespace}/${name}`);
      if (existing !== undefined) {
        if (!isStartable(existing)) pass.dataVolumesReady = false;
        if (stringAt(existing, 'status', 'phase') === 'Failed') {
          this.recorder.record(pass.vm, 'Warning', 'FailedDataVolumeImport', `DataVolume ${name} failed to import disk image`);
        }
        continue;
      }
      pass.dataVolumesReady = false;
      try {
        await this.client.create(resources.dataVolumes, dv);
        this.recorder.record(pass.vm, 'Normal', 'SuccessfulDataVolumeCreate', `Created DataVolume ${name}`);
        pass.log.info('created DataVolume from template', { dataVolume: name });
      } catch (err) {
        if (err instanceof ApiError && err.reason === 'AlreadyExists') continue;
        const message = errorMessage(err);
        this.recorder.record(pass.vm, 'Warning', 'FailedDataVolumeCreate', `Error creating DataVolume ${name}: ${message}`);
        pass.syncError = { reason: 'FailedCreate', message: `Error creating DataVolume ${name}: ${message}`, terminal: err instanceof ApiError && ['Invalid', 'BadRequest', 'Forbidden'].includes(err.reason) };
      }
    }
  }

  /** Records a Start request before deleting a failed VMI, so the rerun survives this pass failing half-way. */
  private async requestRerun(pass: Pass): Promise<void> {
    if (pass.requests.some((r) => r.action === 'Start')) return;
    const requests = [...pass.requests, { action: 'Start' }];
    const status = { ...recordAt(pass.vm, 'status'), stateChangeRequests: requests };
    pass.vm = await this.client.update(resources.virtualMachines, { ...pass.vm, status }, 'status');
    pass.requests = stateChangeRequestsOf(pass.vm);
  }

  private async stopVmi(pass: Pass): Promise<void> {
    const vmi = pass.vmi;
    if (vmi === undefined) return;
    try {
      await this.client.delete(resources.virtualMachineInstances, vmi.metadata.namespace, vmi.metadata.name ?? '', { preconditions: { uid: vmi.metadata.uid ?? '' } });
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound') {
        pass.vmi = undefined;
        return;
      }
      const message = errorMessage(err);
      pass.syncError = { reason: 'FailedDelete', message: `Failure attempting to delete VMI: ${message}`, terminal: false };
      this.recorder.record(pass.vm, 'Warning', 'FailedDelete', `Error deleting virtual machine instance ${vmi.metadata.name ?? ''}: ${message}`);
      return;
    }
    pass.stopExpected = true;
    pass.log.info('stopped VM by deleting its VMI', { vmi: vmi.metadata.uid, phase: vmiPhase(vmi) });
    this.recorder.record(pass.vm, 'Normal', 'SuccessfulDelete', `Stopped the virtual machine by deleting the virtual machine instance ${vmi.metadata.uid ?? ''}`);
  }

  /**
   * A VM generation change that left the template alone (a run strategy
   * edit, a label) is still observed by the running VMI: move its
   * generation annotation forward, as KubeVirt does.
   */
  private async syncGeneration(vm: KObject, vmi: KObject): Promise<KObject> {
    const generation = String(vm.metadata.generation ?? 1);
    const vmiAnnotations = vmi.metadata.annotations ?? {};
    if (vmiAnnotations[annotations.vmGeneration] === generation || vmiAnnotations[annotations.templateHash] !== templateHash(vm)) return vmi;
    try {
      return await this.client.patch(resources.virtualMachineInstances, vmi.metadata.namespace, vmi.metadata.name ?? '', 'merge', {
        metadata: { annotations: { [annotations.vmGeneration]: generation } },
      });
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound') return vmi;
      throw err;
    }
  }

  private async writeStatus(pass: Pass, now: number): Promise<void> {
    const status = computeStatus({
      vm: pass.vm,
      vmi: pass.vmi,
      strategy: pass.strategy,
      stopExpected: pass.stopExpected,
      requests: pass.requests,
      startFailure: pass.startFailure,
      syncError: pass.syncError,
      templateHash: templateHash(pass.vm),
      instancetypeRef: pass.refs.instancetype,
      preferenceRef: pass.refs.preference,
      dataVolumes: dataVolumeStateOf(pass.vm, (name) => this.dvs.get(`${pass.vm.metadata.namespace ?? 'default'}/${name}`)),
      now,
    });
    if (!statusChanged(pass.vm.status, status)) return;
    await this.client.update(resources.virtualMachines, { ...pass.vm, status }, 'status');
    pass.log.debug('status updated', { printableStatus: status.printableStatus });
  }
}
