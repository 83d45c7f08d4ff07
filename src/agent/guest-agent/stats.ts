/**
 * What the guest agent says about the guest's resources, for the node's
 * metrics: its filesystems (`guest-get-fsinfo`) and, from qemu-ga 10.0 on,
 * its load averages (`guest-get-load`). The monitor asks on its own
 * session, at most every {@link guestStatsIntervalMs} (as KubeVirt's
 * virt-launcher polls its agent), and keeps the answers; a scrape reads
 * what is kept and never waits on the guest.
 */
import type { GuestAgentClient } from './client.js';
import { GuestAgentError } from './errors.js';
import type { GuestFsInfo, GuestInfo, GuestLoad } from './schema.js';

/** How often the monitor asks the guest for its filesystems and load. */
export const guestStatsIntervalMs = 10_000;

/** The answers kept; a part the guest did not answer is missing. */
export interface GuestAgentStats {
  /** When the guest answered (ms since epoch). */
  at: number;
  filesystems?: GuestFsInfo;
  load?: GuestLoad;
}

/** The commands `guest-info` lists as enabled. */
export function enabledCommands(info: GuestInfo): Set<string> {
  return new Set(info.supported_commands.filter((c) => c.enabled).map((c) => c.name));
}

/**
 * `ask`'s answer, or undefined when the agent refuses it (a frozen guest,
 * a command blocked by its configuration) or answers something else than
 * the command returns: the metrics then lack that part, and the session,
 * still in step, goes on.
 */
async function unlessRefused<T>(client: GuestAgentClient, ask: () => Promise<T>): Promise<T | undefined> {
  try {
    return await ask();
  } catch (err) {
    // A timeout or a closed channel ends the session: the monitor deals with those.
    if (err instanceof GuestAgentError && !client.closed && (err.code === 'GuestAgentCommandFailed' || err.code === 'GuestAgentProtocol')) return undefined;
    throw err;
  }
}

/**
 * Asks `client` for the guest's filesystems, and for its load when the
 * agent has `guest-get-load` (older agents would answer CommandNotFound:
 * the load is then left out, never written as 0).
 */
export async function askGuestStats(client: GuestAgentClient, enabled: ReadonlySet<string>, now: () => number = Date.now): Promise<GuestAgentStats> {
  const filesystems = enabled.has('guest-get-fsinfo') ? await unlessRefused(client, () => client.fsInfo()) : undefined;
  const load = enabled.has('guest-get-load') ? await unlessRefused(client, () => client.load()) : undefined;
  return { at: now(), ...(filesystems === undefined ? {} : { filesystems }), ...(load === undefined ? {} : { load }) };
}
