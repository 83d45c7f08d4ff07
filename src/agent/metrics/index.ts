/**
 * The node agent's metrics: KubeVirt's per-VMI families (virt-handler's)
 * for every guest running on the node, as Prometheus text.
 *
 * A scrape does not wait on QEMU. Prometheus scrapes at a fixed interval,
 * which the scrapes themselves show: after each scrape the guests are asked
 * for fresh QMP answers again shortly before the next one is due (a quarter
 * of the interval ahead, within {@link aheadMs}; on a loaded node twice what
 * the last asking took), so that the next scrape finds current answers and
 * only reads the kernel's counters (cgroup, /proc), which are read at each
 * scrape. A guest whose answers are not current (a new guest, a scrape off
 * the rhythm, a slow QEMU) is asked at the scrape, which waits at most
 * {@link freshWaitMs} for those and otherwise serves the guest's previous
 * answers (at most {@link maxAnswerAgeMs} old). On a loaded node a busy
 * guest's QEMU can take tens of milliseconds per command; a hundred of them
 * would otherwise hold every scrape.
 */
import type { KObject } from '../../api/object.js';
import { stringAt } from '../../api/kinds/read.js';
import { Exposition } from './exposition.js';
import { KeptFiles } from './kept-files.js';
import { queryGuest, writeGuest } from './vmi-stats.js';
import type { GuestFiles, QmpAnswers, ScrapedGuest } from './vmi-stats.js';

export { Exposition, escapeLabelValue, labelText, parseSamples, textFormat, vmiLabelName } from './exposition.js';
export type { FamilySpec, Labels, MetricType, ParsedSample } from './exposition.js';
export { cgroupCpu, cpuListSize, parseNetDev, queryGuest, schedWaitNs, vmiBaseLabels, vmiFamilies, writeGuest } from './vmi-stats.js';
export type { GuestFiles, QmpAnswers, ScrapedGuest } from './vmi-stats.js';

/** How long one QMP command may take before its answer is left out. */
export const commandDeadlineMs = 1_000;
/** How long a scrape waits for the fresh answers of guests it had to ask, all together. */
export const freshWaitMs = 25;
/** Answers older than this are not served (a guest that stopped answering loses its QEMU families). */
export const maxAnswerAgeMs = 60_000;
/** How long before the next scrape is due the guests are asked: a quarter of the interval, within these bounds. */
export const aheadMs = { min: 100, max: 1_000 } as const;
/** Scrapes closer together than this (a person's `kubectl get --raw`, twice) set no rhythm: nothing is asked ahead. */
export const minIntervalMs = 1_000;
/** Scrapes further apart than this set no rhythm either. */
export const maxIntervalMs = 10 * 60_000;

/** Whether `node` is the source of `vmi`'s migration in flight. */
export function migratingFrom(vmi: KObject, node: string): boolean {
  const state = (vmi.status as { migrationState?: Record<string, unknown> } | undefined)?.migrationState;
  return state !== undefined && stringAt(vmi, 'status', 'migrationState', 'sourceNode') === node && state.completed !== true && state.failed !== true && state.startTimestamp !== undefined;
}

/** One QEMU's latest answers, when they came, and the asking in flight. */
interface Kept {
  answers?: QmpAnswers;
  files: GuestFiles;
  at: number;
  asking?: Promise<void> | undefined;
}

/** How one scrape went: for tests and the benchmark. */
export interface ScrapeReport {
  guests: number;
  /** Guests whose answers were current, asked ahead: nothing was waited for. */
  current: number;
  /** Guests asked at the scrape. */
  asked: number;
  /** Of those, the ones whose answers came too late for it (their previous answers were served, or none). */
  late: number;
  /** How long the scrape waited for QEMU. */
  waitedMs: number;
  /** The oldest answers served, in ms (0 when none). */
  oldestAnswerMs: number;
}

export interface GuestMetricsOptions {
  freshWaitMs?: number;
  now?: () => number;
}

/** The node's guests' metrics, with the QMP answers kept between scrapes and asked ahead of the next. */
export class GuestMetrics {
  private readonly kept = new Map<string, Kept>();
  /** When the last scrape came (ms since epoch). */
  private lastScrapeAt: number | undefined;
  /** The distance between the last two scrapes, when it makes a rhythm. */
  private interval: number | undefined;
  /** How long the last asking ahead took until every guest had answered. */
  private roundMs = 0;
  private ahead: NodeJS.Timeout | undefined;
  private stopped = false;
  /** How the last scrape went. */
  lastReport: ScrapeReport | undefined;

  constructor(private readonly options: GuestMetricsOptions = {}) {}

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** Asks `guest` unless an asking is in flight; resolves when the answers are kept. */
  private ask(guest: Omit<ScrapedGuest, 'migrating'>, node: string): Promise<void> {
    const key = keyOf(guest);
    let kept = this.kept.get(key);
    if (kept === undefined) {
      kept = { at: 0, files: { kept: new KeptFiles() } };
      this.kept.set(key, kept);
    }
    if (kept.asking !== undefined) return kept.asking;
    const entry = kept;
    entry.asking = queryGuest(guest.machine, migratingFrom(guest.vmi, node), commandDeadlineMs, entry.answers).then((answers) => {
      // The vCPU threads and the domain's memory are kept; the rest is new.
      entry.answers = answers;
      entry.at = this.now();
    }, () => {
      // A failed asking keeps the previous answers; the next scrape asks again.
    }).finally(() => { entry.asking = undefined; });
    return entry.asking;
  }

  /** The text of one scrape of `guests` on `node`. */
  async scrape(guests: readonly Omit<ScrapedGuest, 'migrating'>[], node: string): Promise<string> {
    const started = this.now();
    const since = this.lastScrapeAt === undefined ? undefined : started - this.lastScrapeAt;
    this.interval = since !== undefined && since >= minIntervalMs && since <= maxIntervalMs ? since : undefined;
    this.lastScrapeAt = started;
    // Answers asked ahead for this scrape are current: younger than twice the lead.
    const currentSince = started - 2 * this.lead();
    const present = new Set<string>();
    const asked: Promise<void>[] = [];
    let current = 0;
    for (const guest of guests) {
      const key = keyOf(guest);
      present.add(key);
      const kept = this.kept.get(key);
      if (kept?.answers !== undefined && kept.at >= currentSince) current++;
      else asked.push(this.ask(guest, node));
    }
    // Guests that are gone take their answers with them.
    for (const [key, kept] of this.kept) {
      if (present.has(key)) continue;
      kept.files.kept?.close();
      this.kept.delete(key);
    }
    let late = 0;
    if (asked.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      let settled = 0;
      for (const asking of asked) void asking.then(() => { settled++; });
      await Promise.race([Promise.all(asked), new Promise<void>((resolve) => { timer = setTimeout(resolve, this.options.freshWaitMs ?? freshWaitMs); })]);
      clearTimeout(timer);
      late = asked.length - settled;
    }
    const written = this.now();
    const out = new Exposition();
    const oldest = written - maxAnswerAgeMs;
    let oldestAnswerMs = 0;
    for (const guest of guests) {
      const kept = this.kept.get(keyOf(guest));
      const answers = kept?.answers !== undefined && kept.at >= oldest ? kept.answers : undefined;
      if (answers !== undefined && kept !== undefined) oldestAnswerMs = Math.max(oldestAnswerMs, written - kept.at);
      writeGuest(guest, answers ?? {}, node, out, kept?.files);
    }
    this.lastReport = { guests: guests.length, current, asked: asked.length, late, waitedMs: written - started, oldestAnswerMs };
    this.askAhead(guests, node, started);
    return out.text();
  }

  /** Stops asking ahead (the agent stops). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.ahead);
    this.ahead = undefined;
    for (const kept of this.kept.values()) kept.files.kept?.close();
    this.kept.clear();
  }

  /** Asks every guest of this scrape again shortly before the next scrape is due, if the scrapes keep a rhythm. */
  private askAhead(guests: readonly Omit<ScrapedGuest, 'migrating'>[], node: string, scrapedAt: number): void {
    clearTimeout(this.ahead);
    this.ahead = undefined;
    const interval = this.interval;
    if (this.stopped || interval === undefined) return;
    const delay = Math.max(0, scrapedAt + interval - this.lead() - this.now());
    this.ahead = setTimeout(() => {
      this.ahead = undefined;
      const began = this.now();
      const asked = guests.filter((guest) => guest.machine.exit === undefined && this.kept.has(keyOf(guest))).map((guest) => this.ask(guest, node));
      void Promise.all(asked).then(() => { this.roundMs = this.now() - began; });
    }, delay);
    // Asking ahead never keeps the process alive.
    this.ahead.unref();
  }

  /**
   * How long before the next scrape the guests are asked: a quarter of the
   * interval within {@link aheadMs}, or twice what the last asking took when
   * that is longer (a loaded node), at most half the interval; the least
   * lead without a rhythm.
   */
  private lead(): number {
    const interval = this.interval;
    if (interval === undefined) return aheadMs.min;
    return Math.min(interval / 2, Math.max(2 * this.roundMs, Math.min(aheadMs.max, Math.max(aheadMs.min, interval / 4))));
  }
}

function keyOf(guest: Omit<ScrapedGuest, 'migrating'>): string {
  return `${guest.machine.record.uid}/${guest.machine.pid}`;
}
