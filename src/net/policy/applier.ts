/**
 * Programs one node's policy table: compiles the cluster's policies for
 * the node's endpoints and replaces the table in one `nft -f` transaction
 * (no moment with half a ruleset; conntrack entries, hence established
 * connections, are untouched), and removes the table on stop.
 */
import type { CompiledRuleset, CompileOptions, PolicyInput } from './compile.js';
import { compilePolicies } from './compile.js';
import { ensureBridgeNetfilter } from './bridge-netfilter.js';
import type { NftTarget } from './nft.js';
import { applyRuleset, deleteTable } from './nft.js';

export interface PolicyApplierOptions extends CompileOptions {
  /** Where nft runs (a network namespace in tests). */
  target?: NftTarget;
}

export class PolicyApplier {
  private readonly target: NftTarget;
  private lastText: string | undefined;
  private readonly checkedInterfaces = new Set<string>();

  constructor(private readonly options: PolicyApplierOptions) {
    this.target = options.target ?? {};
  }

  /** Compiles and programs; skips nft when the ruleset has not changed since the last apply. */
  async apply(input: PolicyInput, signal?: AbortSignal): Promise<CompiledRuleset> {
    const compiled = compilePolicies(input, this.options);
    // Only new veths are looked at: one `ip` call per sandbox, not per change.
    const fresh = input.endpoints.filter((endpoint) => endpoint.local && !this.checkedInterfaces.has(endpoint.hostInterface)).map((endpoint) => endpoint.hostInterface);
    if (fresh.length > 0) {
      await ensureBridgeNetfilter(this.target, fresh);
      for (const name of fresh) this.checkedInterfaces.add(name);
    }
    if (compiled.text !== this.lastText) {
      await applyRuleset(this.target, compiled.text, signal);
      this.lastText = compiled.text;
    }
    return compiled;
  }

  /** Removes the table (and with it every rule of this node). */
  async remove(): Promise<void> {
    await deleteTable(this.target, this.options.tableName);
    this.lastText = undefined;
  }
}
