/**
 * The service proxy of one node (kube-proxy): informers on Services and
 * EndpointSlices of all namespaces; any change schedules one recompile
 * (coalesced over `debounceMs`), and the table is replaced with one
 * `nft -f` only when the compiled program differs from the last one
 * programmed. Nothing is programmed before both informers have listed (a
 * restarted agent's table keeps serving until then). Stopping removes the
 * table unless asked to keep it for the next agent.
 */
import { Informer, resources } from '../../client/index.js';
import type { Client } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { runNft } from '../policy/index.js';
import type { NftTarget } from '../policy/index.js';
import { compileServices, removeServicesProgram } from './compile.js';
import { proxiedPorts } from './model.js';

export interface ServiceProxyOptions {
  tableName: string;
  logger: Logger;
  /** Where nft runs (a network namespace in tests); this namespace when unset. */
  target?: NftTarget;
  /** Changes within this window are compiled once (default 50 ms). */
  debounceMs?: number;
}

/** Programs a compiled service table, skipping nft when nothing changed. */
export class ServiceTableApplier {
  private lastText: string | undefined;
  /** How many times nft was run to program the table. */
  programmed = 0;

  constructor(
    private readonly tableName: string,
    private readonly target: NftTarget = {},
  ) {}

  /** Programs `text`; false when it equals what was programmed last. */
  async apply(text: string, signal?: AbortSignal): Promise<boolean> {
    if (text === this.lastText) return false;
    await runNft(this.target, ['-f', '-'], signal === undefined ? { input: text } : { input: text, signal });
    this.lastText = text;
    this.programmed++;
    return true;
  }

  async remove(): Promise<void> {
    await runNft(this.target, ['-f', '-'], { input: removeServicesProgram(this.tableName) });
    this.lastText = undefined;
  }
}

export class ServiceProxy {
  readonly applier: ServiceTableApplier;
  private readonly services: Informer;
  private readonly slices: Informer;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private started = false;
  private stopped = false;

  constructor(
    client: Client,
    private readonly options: ServiceProxyOptions,
  ) {
    this.applier = new ServiceTableApplier(options.tableName, options.target);
    this.services = new Informer(client, resources.services, options.logger);
    this.slices = new Informer(client, resources.endpointSlices, options.logger);
    for (const informer of [this.services, this.slices]) informer.onChange(() => { this.schedule(); });
  }

  /** Starts the informers and programs the table once both have listed. */
  async start(): Promise<void> {
    await Promise.all([this.services.start(), this.slices.start()]);
    if (this.stopped) return;
    this.started = true;
    await this.sync();
  }

  /** Stops watching; removes the table unless `keepTable` (it keeps serving for the next agent). */
  async stop(options: { keepTable?: boolean } = {}): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await Promise.all([this.services.stop(), this.slices.stop()]);
    await this.running;
    if (options.keepTable !== true) await this.applier.remove();
  }

  private schedule(): void {
    if (!this.started || this.stopped || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.sync();
    }, this.options.debounceMs ?? 50);
  }

  /** Recompiles and programs now; a change arriving meanwhile runs once more afterwards. */
  private async sync(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          const text = compileServices(proxiedPorts(this.services.list(), this.slices.list()), { tableName: this.options.tableName });
          if (await this.applier.apply(text)) this.options.logger.debug('service table programmed', { table: this.options.tableName });
        } catch (err) {
          this.options.logger.error('programming the service table failed; retrying on the next change', { table: this.options.tableName, error: err instanceof Error ? err.message : String(err) });
        }
      } while (this.again && !this.stopped);
    })();
    try {
      await this.running;
    } finally {
      this.running = undefined;
    }
  }
}
