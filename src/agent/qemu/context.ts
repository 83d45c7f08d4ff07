/**
 * What the parts of the command-line builder share while they map one VMI:
 * the inputs, the `-machine` properties several parts contribute to, and
 * the warnings for fields that are not applied.
 */
import type { OptionValue } from './keyval.js';
import type { SpecNode } from './spec-reader.js';
import type { NodeFacts, VmiPaths } from './types.js';

export interface BuildContext {
  readonly facts: NodeFacts;
  readonly paths: VmiPaths;
  /** `spec` of the VMI. */
  readonly spec: SpecNode;
  /** `spec.domain`. */
  readonly domain: SpecNode;
  /** Properties of `-machine` beyond its type, in the order they were set. */
  readonly machine: Record<string, OptionValue>;
  /** `-action` settings (what reboots, watchdogs… do). */
  readonly actions: Record<string, OptionValue>;
  /** Environment the QEMU process needs. */
  readonly env: Record<string, string>;
  readonly warnings: string[];
  /** The number of vCPUs at boot (sockets × cores × threads). */
  vcpus: number;
  /** Set when a device needs the USB controller. */
  needsUsb: boolean;
}

/** Records that `node` is not applied, and why. */
export function warn(ctx: Pick<BuildContext, 'warnings'>, node: SpecNode, why: string): void {
  ctx.warnings.push(`${node.path}: ${why}`);
}
