/**
 * KubeVirt's per-VMI families that come from the guest agent (qemu-ga)
 * rather than from QEMU or the host: each filesystem's capacity and use
 * (`guest-get-fsinfo`) and the guest's load averages (`guest-get-load`,
 * qemu-ga 10.0 and later). The answers are the ones the VMI's guest agent
 * monitor keeps (asked about every 10 s); a guest without an agent, or
 * an agent without the command, has no samples of the family.
 */
import type { GuestAgentStats } from '../guest-agent/index.js';
import type { Exposition } from './exposition.js';
import { escapeLabelValue, gaugeFamily as gauge } from './exposition.js';

const loadHelp = (span: string): string => `Guest system load average over ${span} as reported by the guest agent. Load is the number of processes in the run queue or waiting for disk I/O. Requires qemu-guest-agent 10.0.0 or later.`;

/** The guest agent's families, with KubeVirt's names, types and help texts in substance. */
export const guestAgentFamilies = {
  filesystemCapacity: gauge('kubevirt_vmi_filesystem_capacity_bytes', 'Total VM filesystem capacity in bytes.'),
  filesystemUsed: gauge('kubevirt_vmi_filesystem_used_bytes', 'Used VM filesystem capacity in bytes.'),
  guestLoad1m: gauge('kubevirt_vmi_guest_load_1m', loadHelp('1 minute')),
  guestLoad5m: gauge('kubevirt_vmi_guest_load_5m', loadHelp('5 minutes')),
  guestLoad15m: gauge('kubevirt_vmi_guest_load_15m', loadHelp('15 minutes')),
} as const;

/**
 * Adds the guest agent's samples of one guest to `out`; `base` is the
 * guest's per-VMI labels as text. Filesystems are labelled as KubeVirt
 * labels them: `disk_name` is qemu-ga's `name` (the guest's device, e.g.
 * `vdc`), with `mount_point` and `file_system_type`.
 */
export function writeGuestAgentStats(stats: GuestAgentStats | undefined, base: string, out: Exposition): void {
  if (stats === undefined) return;
  const f = guestAgentFamilies;
  for (const fs of stats.filesystems ?? []) {
    const labels = `${base},disk_name="${escapeLabelValue(fs.name)}",mount_point="${escapeLabelValue(fs.mountpoint)}",file_system_type="${escapeLabelValue(fs.type)}"`;
    out.addText(f.filesystemCapacity, labels, fs['total-bytes']);
    out.addText(f.filesystemUsed, labels, fs['used-bytes']);
  }
  const load = stats.load;
  if (load !== undefined) {
    out.addText(f.guestLoad1m, base, load.load1m);
    out.addText(f.guestLoad5m, base, load.load5m);
    out.addText(f.guestLoad15m, base, load.load15m);
  }
}
