/**
 * The node agent's metrics: KubeVirt's per-VMI families (virt-handler's)
 * for every guest running on the node, as Prometheus text. Each guest is
 * read in parallel with a deadline, so a QEMU that hangs costs its own
 * samples only.
 */
import type { KObject } from '../../api/object.js';
import { stringAt } from '../../api/kinds/read.js';
import { Exposition } from './exposition.js';
import { collectGuest } from './vmi-stats.js';
import type { ScrapedGuest } from './vmi-stats.js';

export { Exposition, escapeLabelValue, parseSamples, textFormat, vmiLabelName } from './exposition.js';
export type { FamilySpec, Labels, MetricType, ParsedSample } from './exposition.js';
export { cgroupCpu, parseNetDev, vmiBaseLabels, vmiFamilies } from './vmi-stats.js';
export type { ScrapedGuest } from './vmi-stats.js';

/** How long one guest's QMP answers may take before the scrape goes on without them. */
export const guestDeadlineMs = 1_000;

/** Whether `node` is the source of `vmi`'s migration in flight. */
export function migratingFrom(vmi: KObject, node: string): boolean {
  const state = (vmi.status as { migrationState?: Record<string, unknown> } | undefined)?.migrationState;
  return state !== undefined && stringAt(vmi, 'status', 'migrationState', 'sourceNode') === node && state.completed !== true && state.failed !== true && state.startTimestamp !== undefined;
}

/** The text of one scrape of `guests` on `node`. */
export async function scrapeGuests(guests: readonly Omit<ScrapedGuest, 'migrating'>[], node: string): Promise<string> {
  const out = new Exposition();
  await Promise.all(guests.map((guest) => collectGuest({ ...guest, migrating: migratingFrom(guest.vmi, node) }, node, out, guestDeadlineMs)));
  return out.text();
}
