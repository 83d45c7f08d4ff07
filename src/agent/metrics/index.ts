/**
 * The node agent's metrics: KubeVirt's per-VMI families (virt-handler's)
 * for every guest running on the node, as Prometheus text.
 *
 * A scrape never waits long on QEMU: it asks every guest for fresh QMP
 * answers, waits at most {@link freshWaitMs} for them all together, and
 * writes the freshest it holds: those, or a guest's previous answers (at
 * most {@link maxAnswerAgeMs} old) when it is slower, whose asking goes on
 * in the background for the next scrape. The kernel's counters (cgroup,
 * /proc) are read at each scrape. On a loaded node a busy guest's QEMU
 * can take tens of milliseconds per command; a hundred of them would
 * otherwise hold every scrape for a second.
 */
import type { KObject } from '../../api/object.js';
import { stringAt } from '../../api/kinds/read.js';
import { Exposition } from './exposition.js';
import { queryGuest, writeGuest } from './vmi-stats.js';
import type { QmpAnswers, ScrapedGuest } from './vmi-stats.js';

export { Exposition, escapeLabelValue, labelText, parseSamples, textFormat, vmiLabelName } from './exposition.js';
export type { FamilySpec, Labels, MetricType, ParsedSample } from './exposition.js';
export { cgroupCpu, parseNetDev, queryGuest, vmiBaseLabels, vmiFamilies, writeGuest } from './vmi-stats.js';
export type { QmpAnswers, ScrapedGuest } from './vmi-stats.js';

/** How long one QMP command may take before its answer is left out. */
export const commandDeadlineMs = 1_000;
/** How long a scrape waits for the guests' fresh answers, all together. */
export const freshWaitMs = 25;
/** Answers older than this are not served (a guest that stopped answering loses its QEMU families). */
export const maxAnswerAgeMs = 60_000;

/** Whether `node` is the source of `vmi`'s migration in flight. */
export function migratingFrom(vmi: KObject, node: string): boolean {
  const state = (vmi.status as { migrationState?: Record<string, unknown> } | undefined)?.migrationState;
  return state !== undefined && stringAt(vmi, 'status', 'migrationState', 'sourceNode') === node && state.completed !== true && state.failed !== true && state.startTimestamp !== undefined;
}

/** One QEMU's latest answers, when they came, and the asking in flight. */
interface Kept {
  answers?: QmpAnswers;
  at: number;
  asking?: Promise<void> | undefined;
}

/** The node's guests' metrics, with the QMP answers kept between scrapes. */
export class GuestMetrics {
  private readonly kept = new Map<string, Kept>();

  constructor(private readonly options: { freshWaitMs?: number; now?: () => number } = {}) {}

  /** The text of one scrape of `guests` on `node`. */
  async scrape(guests: readonly Omit<ScrapedGuest, 'migrating'>[], node: string): Promise<string> {
    const now = this.options.now ?? Date.now;
    const current = new Set<string>();
    const asked: Promise<void>[] = [];
    for (const guest of guests) {
      const key = `${guest.machine.record.uid}/${guest.machine.pid}`;
      current.add(key);
      let kept = this.kept.get(key);
      if (kept === undefined) {
        kept = { at: 0 };
        this.kept.set(key, kept);
      }
      let asking = kept.asking;
      if (asking === undefined) {
        const entry = kept;
        asking = queryGuest(guest.machine, migratingFrom(guest.vmi, node), commandDeadlineMs, entry.answers).then((answers) => {
          // The vCPU threads and the domain's memory are kept; the rest is new.
          entry.answers = answers;
          entry.at = now();
        }).finally(() => { entry.asking = undefined; });
        entry.asking = asking;
      }
      asked.push(asking);
    }
    // Guests that are gone take their answers with them.
    for (const key of this.kept.keys()) if (!current.has(key)) this.kept.delete(key);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(asked), new Promise<void>((resolve) => { timer = setTimeout(resolve, this.options.freshWaitMs ?? freshWaitMs); })]);
    clearTimeout(timer);
    const out = new Exposition();
    const oldest = now() - maxAnswerAgeMs;
    for (const guest of guests) {
      const kept = this.kept.get(`${guest.machine.record.uid}/${guest.machine.pid}`);
      writeGuest(guest, kept?.answers !== undefined && kept.at >= oldest ? kept.answers : {}, node, out);
    }
    return out.text();
  }
}
