/**
 * Whether a VMI's guest agent answers, kept up to date for the VMI's status
 * (KubeVirt's `AgentConnected` condition, `guestOSInfo`, `fsFreezeStatus`),
 * and the one session through which the node agent freezes and thaws the
 * guest's filesystems (QEMU serves the channel to one client at a time).
 *
 * The monitor connects and syncs, reads the agent's info once, then pings
 * it; a missed answer (the guest rebooting, the agent stopped) ends the
 * session, the VMI loses `AgentConnected`, and the monitor tries again.
 * A freeze is thawed by the monitor itself after its unfreeze timeout if
 * nobody thawed it first, as KubeVirt's virt-launcher does.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../log/logger.js';
import { GuestAgentClient } from './client.js';
import { GuestAgentError } from './errors.js';
import type { GuestOsInfo } from './schema.js';
import { askGuestStats, enabledCommands, guestStatsIntervalMs } from './stats.js';
import type { GuestAgentStats } from './stats.js';

/** What is known of the guest agent now. */
export interface GuestAgentState {
  connected: boolean;
  /** `guest-info`'s version, while connected. */
  version?: string;
  /** `guest-get-osinfo`, while connected. */
  osInfo?: GuestOsInfo;
  hostName?: string;
  /** The guest's filesystems are frozen (through this monitor, or found so at connect). */
  frozen: boolean;
}

export interface GuestAgentMonitorOptions {
  socketPath: string;
  logger: Logger;
  /** Called when the state changed. */
  onChange: () => void;
  /** Between pings; 5 s by default. */
  pollMs?: number;
  /** Between attempts to reach an agent that does not answer; 2 s by default. */
  retryMs?: number;
  /** Between askings of the guest's filesystems and load; {@link guestStatsIntervalMs} by default. */
  statsIntervalMs?: number;
  /** How long each command may take; the client's 10 s by default. */
  commandTimeoutMs?: number;
}

/** How long a guest whose stats timed out is not asked for them again. */
const statsPauseMs = 10 * 60_000;

/** KubeVirt's default unfreeze timeout for a freeze nobody thaws. */
export const defaultUnfreezeTimeoutMs = 5 * 60_000;

/** See the module comment. */
export class GuestAgentMonitor {
  private current: GuestAgentState = { connected: false, frozen: false };
  private client: GuestAgentClient | undefined;
  private readonly stopper = new AbortController();
  private unfreezeTimer: NodeJS.Timeout | undefined;
  private running = false;
  private keptStats: GuestAgentStats | undefined;
  /** No stats are asked before this time (ms since epoch): the guest did not answer them in time. */
  private statsPausedUntil = 0;

  constructor(private readonly options: GuestAgentMonitorOptions) {}

  /** The state now. */
  get state(): GuestAgentState {
    return this.current;
  }

  /**
   * The guest's filesystems and load as last answered (see `stats.ts`);
   * undefined while no agent answers. Reading it asks the guest nothing.
   */
  get stats(): GuestAgentStats | undefined {
    return this.keptStats;
  }

  /** Starts watching (once). */
  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  /** Stops watching and closes the session; a freeze is left as it is (the guest may be gone). */
  stop(): void {
    this.stopper.abort(new Error('the guest agent monitor stopped'));
    clearTimeout(this.unfreezeTimer);
    this.client?.close();
  }

  /**
   * Freezes the guest's filesystems; thawed by the monitor after
   * `unfreezeTimeoutMs` (0: never) unless `thaw` comes first. Resolves with how many
   * filesystems froze; throws `GuestAgentError` when no agent answers.
   */
  async freeze(options: { unfreezeTimeoutMs?: number } = {}): Promise<number> {
    const client = this.connectedClient('freeze the guest filesystems');
    this.setState({ ...this.current, frozen: true });
    clearTimeout(this.unfreezeTimer);
    this.unfreezeTimer = undefined;
    const unfreezeTimeoutMs = options.unfreezeTimeoutMs ?? defaultUnfreezeTimeoutMs;
    if (unfreezeTimeoutMs > 0) this.scheduleThaw(unfreezeTimeoutMs);
    try {
      const count = await client.fsFreeze({ timeoutMs: 60_000 });
      this.options.logger.info('guest filesystems frozen', { count });
      return count;
    } catch (err) {
      // A freeze that failed half-way may have frozen some: thaw what there is.
      await this.thaw().catch(() => undefined);
      throw err;
    }
  }

  /** Thaws the guest's filesystems; resolves with how many thawed. */
  async thaw(): Promise<number> {
    clearTimeout(this.unfreezeTimer);
    this.unfreezeTimer = undefined;
    const client = this.connectedClient('thaw the guest filesystems');
    const count = await client.fsThaw({ timeoutMs: 60_000 });
    this.options.logger.info('guest filesystems thawed', { count });
    this.setState({ ...this.current, frozen: false });
    return count;
  }

  /** Runs `work` with the guest's filesystems frozen, and always thaws after. */
  async whileFrozen<T>(work: () => Promise<T>): Promise<T> {
    await this.freeze();
    try {
      return await work();
    } finally {
      await this.thaw();
    }
  }

  private scheduleThaw(afterMs: number): void {
    this.unfreezeTimer = setTimeout(() => {
      this.unfreezeTimer = undefined;
      this.options.logger.warn('the guest filesystems stayed frozen past the unfreeze timeout; thawing');
      this.thaw().catch((err: unknown) => { this.options.logger.warn('cannot thaw the guest filesystems', { err }); });
    }, afterMs);
    // A pending thaw must not keep the agent process alive on its own.
    this.unfreezeTimer.unref();
  }

  private connectedClient(what: string): GuestAgentClient {
    const client = this.client;
    if (client === undefined || client.closed || !this.current.connected) {
      throw new GuestAgentError('GuestAgentClosed', `cannot ${what}: the guest agent is not connected`);
    }
    return client;
  }

  private setState(next: GuestAgentState): void {
    if (JSON.stringify(next) === JSON.stringify(this.current)) return;
    this.current = next;
    this.options.onChange();
  }

  /**
   * The guest's stats. A guest that cannot answer them in time (statvfs
   * stuck on a hung network mount) costs the session, since a late reply
   * would be taken for the next command's: it is not asked again for
   * {@link statsPauseMs}, so that its agent stays connected meanwhile.
   */
  private async askStats(client: GuestAgentClient, enabled: ReadonlySet<string>): Promise<GuestAgentStats> {
    try {
      return await askGuestStats(client, enabled);
    } catch (err) {
      if (err instanceof GuestAgentError && err.code === 'GuestAgentTimeout') {
        this.statsPausedUntil = Date.now() + statsPauseMs;
        this.options.logger.warn('the guest agent did not answer its filesystems or load in time; not asking again for 10 minutes', { err: err.message });
      }
      throw err;
    }
  }

  private async loop(): Promise<void> {
    const signal = this.stopper.signal;
    const pollMs = this.options.pollMs ?? 5_000;
    const retryMs = this.options.retryMs ?? 2_000;
    const statsIntervalMs = this.options.statsIntervalMs ?? guestStatsIntervalMs;
    while (!signal.aborted) {
      try {
        const client = await GuestAgentClient.connect(this.options.socketPath, this.options.commandTimeoutMs === undefined ? { signal } : { signal, commandTimeoutMs: this.options.commandTimeoutMs });
        this.client = client;
        const info = await client.info();
        const osInfo = await client.osInfo().catch(() => undefined);
        const hostName = await client.hostName().catch(() => undefined);
        const frozen = (await client.fsFreezeStatus().catch(() => 'thawed')) === 'frozen';
        this.options.logger.info('guest agent connected', { version: info.version });
        this.setState({ connected: true, version: info.version, frozen, ...(osInfo === undefined ? {} : { osInfo }), ...(hostName === undefined ? {} : { hostName }) });
        // Found frozen (by an earlier agent, whose unfreeze timer is gone): thawed after the default timeout.
        if (frozen && this.unfreezeTimer === undefined) this.scheduleThaw(defaultUnfreezeTimeoutMs);
        const enabled = enabledCommands(info);
        let statsAt = -Infinity;
        while (!signal.aborted) {
          // A frozen guest's agent refuses these commands: its filesystems keep their last answer until the thaw.
          if (Date.now() - statsAt >= statsIntervalMs && Date.now() >= this.statsPausedUntil && !this.current.frozen) {
            statsAt = Date.now();
            this.keptStats = await this.askStats(client, enabled);
          }
          await sleep(Math.min(pollMs, statsIntervalMs), undefined, { signal });
          await client.ping();
        }
      } catch (err) {
        if (signal.aborted) break;
        if (this.current.connected) this.options.logger.info('guest agent stopped answering', { err: err instanceof Error ? err.message : String(err) });
      } finally {
        this.client?.close();
        this.client = undefined;
      }
      this.keptStats = undefined;
      if (signal.aborted) break;
      this.setState({ connected: false, frozen: false });
      await sleep(retryMs, undefined, { signal }).catch(() => undefined);
    }
  }
}
