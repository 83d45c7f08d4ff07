/**
 * One running QEMU as the agent sees it: its pid, its QMP connection, the
 * guest's run state as QMP reports it, its serial console, and how it
 * ended. A machine is either launched by this agent or attached to after a
 * restart; both are watched the same way (QMP events, socket close, the
 * process, the guest agent), and every change calls `onChange` so the VMI
 * is reconciled.
 */
import { existsSync, writeFileSync } from 'node:fs';
import type { Logger } from '../log/logger.js';
import { GuestAgentMonitor } from './guest-agent/index.js';
import type { VmiLayout, VmiRecord } from './layout.js';
import { QmpClient } from './qmp/index.js';
import type { QmpArgsParam, QmpCommandName, QmpEvent, QmpReturn, RunState } from './qmp/index.js';
import type { ProcessExit } from './qemu-process.js';
import { describeExit, isQemuAlive, qemuErrorLine, signalQemu, waitGone } from './qemu-process.js';
import { SerialConsole } from './serial-console.js';

/** How a machine ended, as the VMI's final phase will say. */
export interface MachineExit {
  phase: 'Succeeded' | 'Failed';
  /** For the VMI's condition message. */
  message: string;
  /** The VMI's `status.reason` and its Ready condition's reason, when the end has a name of its own (`NodeFenced`). */
  reason?: string;
}

/** QEMU's `query-status` run state (`running`, `paused`, `prelaunch`, `io-error`, …), or `unknown` before the first answer. */
export type QemuRunState = RunState | 'unknown';

/** Who a machine is and whom it tells about changes. */
export interface MachineOptions {
  key: string;
  layout: VmiLayout;
  record: VmiRecord & { pid: number };
  logger: Logger;
  /** Called after anything observable changed (run state, exit). */
  onChange: () => void;
  /** Called with the `info` of each guest panic QEMU reports (`GUEST_PANICKED`), for the panic counter. */
  onPanic?: ((info: Record<string, unknown> | undefined) => void) | undefined;
}

/** A QEMU the agent watches and drives; see the module comment. */
export class Machine {
  readonly key: string;
  readonly layout: VmiLayout;
  readonly record: VmiRecord & { pid: number };
  readonly console: SerialConsole;
  /** The guest agent on the VMI's channel: whether it answers, what it says, freeze and thaw. */
  readonly guestAgent: GuestAgentMonitor;
  /** QEMU's run state from the last `query-status`. */
  runState: QemuRunState = 'unknown';
  /** When the agent asked the guest to power off (ms since epoch). */
  powerdownRequestedAt: number | undefined;
  private exitInfo: MachineExit | undefined;
  private detached = false;
  private readonly logger: Logger;
  private readonly onChange: () => void;
  private readonly onPanic: ((info: Record<string, unknown> | undefined) => void) | undefined;

  private constructor(
    options: MachineOptions,
    private readonly qmp: QmpClient,
    processExit: Promise<ProcessExit> | undefined,
  ) {
    this.key = options.key;
    this.layout = options.layout;
    this.record = options.record;
    this.logger = options.logger;
    this.onChange = options.onChange;
    this.onPanic = options.onPanic;
    this.console = new SerialConsole({ socketPath: this.layout.serialSocket, logFile: this.layout.serialLog, logger: this.logger });
    this.guestAgent = new GuestAgentMonitor({ socketPath: this.layout.guestAgentSocket, logger: this.logger.child({ part: 'guest-agent' }), onChange: () => { this.onChange(); } });
    qmp.on('event', (e) => { this.onEvent(e); });
    qmp.on('close', () => { void this.onQmpClosed(processExit); });
  }

  /**
   * Connects to the QMP socket of a QEMU that is starting or running;
   * rejects when QEMU is gone before it answers. `processExit` is known
   * only to the agent that spawned the process.
   */
  static async connect(options: MachineOptions, processExit: Promise<ProcessExit> | undefined, signal: AbortSignal): Promise<Machine> {
    const qmp = await connectQmp(options, processExit, signal);
    const machine = new Machine(options, qmp, processExit);
    try {
      await machine.refreshRunState();
      await machine.console.open(signal);
      machine.guestAgent.start();
    } catch (err) {
      machine.detach();
      throw err;
    }
    return machine;
  }

  get pid(): number {
    return this.record.pid;
  }

  /** How QEMU ended; undefined while it runs. */
  get exit(): MachineExit | undefined {
    return this.exitInfo;
  }

  /** Runs a QMP command. */
  execute<C extends QmpCommandName>(command: C, ...args: QmpArgsParam<C>): Promise<QmpReturn<C>> {
    return this.qmp.execute(command, ...args);
  }

  /**
   * Resolves with the first event `match` accepts from now on, or undefined
   * after `timeoutMs` (or when QMP closes); register before the command that
   * causes it, so the event cannot slip past.
   */
  waitForEvent(match: (e: QmpEvent) => boolean, options: { timeoutMs: number; signal?: AbortSignal }): Promise<QmpEvent | undefined> {
    return new Promise((resolve) => {
      const finish = (e: QmpEvent | undefined): void => {
        clearTimeout(timer);
        this.qmp.off('event', onEvent);
        this.qmp.off('close', onClose);
        options.signal?.removeEventListener('abort', onClose);
        resolve(e);
      };
      const onEvent = (e: QmpEvent): void => { if (match(e)) finish(e); };
      const onClose = (): void => { finish(undefined); };
      const timer = setTimeout(onClose, options.timeoutMs);
      this.qmp.on('event', onEvent);
      this.qmp.on('close', onClose);
      options.signal?.addEventListener('abort', onClose, { once: true });
    });
  }

  /** Re-reads QEMU's run state. */
  async refreshRunState(): Promise<QemuRunState> {
    const reply = await this.qmp.execute('query-status');
    this.runState = reply.status;
    return this.runState;
  }

  /** Presses the ACPI power button (once; the VMI's grace period runs from the first press). */
  async requestPowerdown(): Promise<void> {
    await this.qmp.execute('system_powerdown');
    this.powerdownRequestedAt ??= Date.now();
  }

  /** SIGKILLs QEMU and waits until it is gone. */
  async kill(signal?: AbortSignal): Promise<void> {
    signalQemu(this.pid, this.layout.qmpSocket, 'SIGKILL');
    const gone = await waitGone(this.pid, this.layout.qmpSocket, signal === undefined ? { timeoutMs: 10_000 } : { timeoutMs: 10_000, signal });
    if (!gone) throw new Error(`QEMU pid ${this.pid} is still there 10 s after SIGKILL`);
  }

  /** Lets go of QEMU without touching it (agent stop): QMP and console connections close, the guest runs on. */
  detach(): void {
    this.detached = true;
    this.guestAgent.stop();
    this.console.close();
    this.qmp.close();
  }

  private onEvent(e: QmpEvent): void {
    this.logger.debug('QMP event', { event: e.event, data: e.data });
    switch (e.event) {
      case 'SHUTDOWN': {
        // A guest that powers itself off (or resets with reboot=shutdown) ended normally; anything else did not.
        if (e.data.guest && (e.data.reason === 'guest-shutdown' || e.data.reason === 'guest-reset')) {
          try {
            writeFileSync(this.layout.guestShutdownMarker, `${e.data.reason}\n`);
          } catch (err) {
            this.logger.warn('cannot record the guest shutdown', { err });
          }
        }
        this.onChange();
        return;
      }
      case 'GUEST_PANICKED':
        this.logger.warn('the guest OS panicked', { action: e.data.action, info: e.data.info });
        this.onPanic?.(e.data.info);
        this.refreshRunState().then(
          () => { this.onChange(); },
          () => { this.onChange(); },
        );
        return;
      case 'STOP':
      case 'RESUME':
      case 'RESET':
        this.refreshRunState().then(
          () => { this.onChange(); },
          () => { this.onChange(); },
        );
        return;
      default:
        return;
    }
  }

  private async onQmpClosed(processExit: Promise<ProcessExit> | undefined): Promise<void> {
    if (this.detached) return;
    this.console.close();
    this.guestAgent.stop();
    const gone = await waitGone(this.pid, this.layout.qmpSocket, { timeoutMs: 10_000 });
    if (!gone) {
      // Without QMP the agent cannot drive or observe the guest: a QEMU in that state is ended.
      this.logger.warn('QEMU closed its QMP socket but still runs; killing it', { pid: this.pid });
      await this.kill().catch((err: unknown) => { this.logger.error('cannot kill QEMU', { err, pid: this.pid }); });
    }
    // Only the agent that spawned QEMU learns its exit status; a later agent knows only that it is gone.
    const how = processExit === undefined ? 'exited' : describeExit(await processExit);
    if (this.detached) return;
    this.exitInfo = await classifyExit(this.layout, how);
    this.logger.info('QEMU exited', { pid: this.pid, phase: this.exitInfo.phase, how });
    this.onChange();
  }
}

/** Succeeded when QEMU reported that the guest powered off (now or before an agent restart), else Failed. */
export async function classifyExit(layout: VmiLayout, how: string): Promise<MachineExit> {
  if (existsSync(layout.guestShutdownMarker)) return { phase: 'Succeeded', message: 'the guest powered off' };
  const line = await qemuErrorLine(layout.qemuLog);
  return { phase: 'Failed', message: `QEMU stopped unexpectedly (${how})${line === '' ? '' : `: ${line}`}` };
}

/**
 * QMP is ready when it greets us. The client waits for the socket to
 * appear; a QEMU that dies first ends the wait at once, with its own error.
 */
async function connectQmp(options: MachineOptions, processExit: Promise<ProcessExit> | undefined, signal: AbortSignal): Promise<QmpClient> {
  const stop = new AbortController();
  const onAbort = (): void => { stop.abort(signal.reason); };
  signal.addEventListener('abort', onAbort, { once: true });
  let exited: ProcessExit | undefined;
  void processExit?.then((e) => {
    exited = e;
    stop.abort(new Error('QEMU exited'));
  });
  try {
    return await QmpClient.connect(options.layout.qmpSocket, { signal: stop.signal, timeoutMs: 60_000 });
  } catch (err) {
    if (signal.aborted) throw err;
    if (exited !== undefined || !isQemuAlive(options.record.pid, options.layout.qmpSocket)) {
      const line = await qemuErrorLine(options.layout.qemuLog);
      throw new QemuStartError(line === '' ? `QEMU exited before its QMP socket answered${exited === undefined ? '' : ` (${describeExit(exited)})`}` : line, { cause: err });
    }
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** QEMU died while starting; `message` is QEMU's own error line. */
export class QemuStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QemuStartError';
  }
}
