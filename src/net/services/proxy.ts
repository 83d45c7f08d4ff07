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
import { CoalescedSync } from '../coalesced-sync.js';

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
  private readonly sync: CoalescedSync;

  constructor(
    client: Client,
    private readonly options: ServiceProxyOptions,
  ) {
    this.applier = new ServiceTableApplier(options.tableName, options.target);
    this.services = new Informer(client, resources.services, options.logger);
    this.slices = new Informer(client, resources.endpointSlices, options.logger);
    this.sync = new CoalescedSync(() => this.program(), options.debounceMs ?? 50);
    for (const informer of [this.services, this.slices]) informer.onChange(() => { this.sync.schedule(); });
  }

  /** Starts the informers and programs the table once both have listed. */
  async start(): Promise<void> {
    await Promise.all([this.services.start(), this.slices.start()]);
    await this.sync.start();
  }

  /** Stops watching; removes the table unless `keepTable` (it keeps serving for the next agent). */
  async stop(options: { keepTable?: boolean } = {}): Promise<void> {
    await Promise.all([this.sync.stop(), this.services.stop(), this.slices.stop()]);
    if (options.keepTable !== true) await this.applier.remove();
  }

  /** Recompiles and programs the table if it changed. */
  private async program(): Promise<void> {
    try {
      const text = compileServices(proxiedPorts(this.services.list(), this.slices.list()), { tableName: this.options.tableName });
      if (await this.applier.apply(text)) this.options.logger.debug('service table programmed', { table: this.options.tableName });
    } catch (err) {
      this.options.logger.error('programming the service table failed; retrying on the next change', { table: this.options.tableName, error: err instanceof Error ? err.message : String(err) });
    }
  }
}
