/**
 * KubeVirt's `kubevirt_vmi_guest_os_panic_total`: the guest OS panics the
 * node agent saw, as QMP `GUEST_PANICKED` events (a pvpanic or Hyper-V
 * crash device in the VMI's `panicDevices`), per VMI, panic type and
 * bugcheck code. Like virt-handler's counter it lives as long as the agent
 * process, not the guest: a panic usually ends the guest (QEMU's panic
 * action is to shut down), and the count must outlive it for
 * `VMNonRecoverableOSPanic`.
 */
import type { Exposition, FamilySpec } from './exposition.js';
import { labelText } from './exposition.js';

export const guestPanicFamily: FamilySpec = {
  name: 'kubevirt_vmi_guest_os_panic_total',
  type: 'counter',
  help: 'Total number of guest OS panic events detected, partitioned by VMI and panic type.',
};

/** The `type` and `bugcheck_code` labels of one panic, from the event's `info` (a pvpanic device sends none: `unknown`). */
export function panicLabels(info: Record<string, unknown> | undefined): { type: string; bugcheck_code: string } {
  const type = typeof info?.type === 'string' && info.type !== '' ? info.type : 'unknown';
  // Hyper-V's crash MSRs: arg1 is the Windows bugcheck code.
  const arg1 = info?.arg1;
  const code = typeof arg1 === 'number' && Number.isInteger(arg1) && arg1 > 0 ? `0x${arg1.toString(16)}` : 'unknown';
  return { type, bugcheck_code: code };
}

/** The node's panic counts since the agent started. */
export class GuestPanics {
  private readonly counts = new Map<string, { labels: string; count: number }>();

  constructor(private readonly node: string) {}

  /** Counts one `GUEST_PANICKED` of VMI `namespace/name`. */
  record(namespace: string, name: string, info: Record<string, unknown> | undefined): void {
    const labels = labelText({ node: this.node, namespace, name, ...panicLabels(info) });
    const entry = this.counts.get(labels);
    if (entry === undefined) this.counts.set(labels, { labels, count: 1 });
    else entry.count += 1;
  }

  /** Adds the counts to `out`; none before the first panic. */
  write(out: Exposition): void {
    for (const { labels, count } of this.counts.values()) out.addText(guestPanicFamily, labels, count);
  }
}
