/**
 * The CNI runtime (what libcni is to Multus): ADD, CHECK and DEL of a
 * network config list for one interface of one sandbox. ADD runs the
 * plugins in order, each getting the previous result; DEL runs them in
 * reverse with the cached result, and is idempotent (a missing cache still
 * runs DEL with the config given); CHECK (0.4.0 and later) verifies the
 * cached result still holds. Results are cached on disk, so a restarted
 * agent can still DEL what it added.
 */
import { ResultCache } from './cache.js';
import type { CacheEntry } from './cache.js';
import type { NetworkConfigList, RuntimeValues } from './config.js';
import { pluginInput, supportsCheck } from './config.js';
import { CniError } from './errors.js';
import { execPlugin } from './exec.js';
import type { PluginExecOptions } from './exec.js';
import { decodeResult, decodeVersionInfo, ResultShapeError } from './result.js';
import type { CniResult } from './result.js';
import { versionAtLeast } from './version.js';

/** Debian's `containernetworking-plugins` installs the plugins here. */
export const defaultCniPath: readonly string[] = ['/usr/lib/cni', '/opt/cni/bin'];

export interface CniRuntimeOptions {
  /** Where results are cached (e.g. `<agent data>/cni/results`). */
  cacheDir: string;
  /** Plugin directories, searched in order; default {@link defaultCniPath}. */
  cniPath?: readonly string[];
  /**
   * Run plugins inside this named network namespace rather than the
   * caller's: where host-side devices (bridges, veth ends) are made.
   * Tests use it to keep the real host untouched.
   */
  pluginNetns?: string;
  /** Per plugin call; default 60 s. A plugin still running then is killed. */
  pluginTimeoutMs?: number;
}

/** One interface of one sandbox, as every CNI operation names it. */
export interface CniAttachment {
  /** `CNI_CONTAINERID`: stable for the sandbox's life (letters, digits, '.', '_', '-'). */
  containerId: string;
  /** `CNI_NETNS`: the sandbox's netns path, e.g. `/run/netns/NAME`. */
  netns: string;
  /** `CNI_IFNAME`: net1, net2… */
  ifName: string;
  /** `CNI_ARGS` pairs (K8S_POD_NAMESPACE…), in order. */
  args: readonly (readonly [string, string])[];
  /** Values for plugins that declare the matching capability. */
  runtime?: RuntimeValues;
  /** Who the attachment is for in messages and the cache (the NAD's `namespace/name`). */
  label: string;
}

interface CompiledOptions {
  cache: ResultCache;
  cniPath: readonly string[];
  pluginNetns: string | undefined;
  timeoutMs: number;
}

export class CniRuntime {
  private readonly options: CompiledOptions;

  constructor(options: CniRuntimeOptions) {
    this.options = {
      cache: new ResultCache(options.cacheDir),
      cniPath: options.cniPath ?? defaultCniPath,
      pluginNetns: options.pluginNetns,
      timeoutMs: options.pluginTimeoutMs ?? 60_000,
    };
  }

  /** ADD: runs the list's plugins in order and caches the final result. On failure nothing is undone here; call {@link del}. */
  async add(list: NetworkConfigList, attachment: CniAttachment, signal: AbortSignal): Promise<CniResult> {
    checkAttachment(attachment);
    const args = argsString(attachment.args);
    const runtime = attachment.runtime ?? {};
    let result: CniResult | undefined;
    for (const plugin of list.plugins) {
      const output = await execPlugin(
        {
          command: 'ADD',
          type: plugin.type,
          input: pluginInput(list, plugin, { ...(result === undefined ? {} : { prevResult: result.raw }), runtime }),
          containerId: attachment.containerId,
          netns: attachment.netns,
          ifName: attachment.ifName,
          args,
          network: attachment.label,
        },
        this.execOptions(signal),
      );
      result = this.decode(output, plugin.type, attachment.label);
    }
    if (result === undefined) throw new CniError('InvalidConfig', `network ${attachment.label} has no plugins`, { network: attachment.label });
    await this.options.cache.write({ containerId: attachment.containerId, ifName: attachment.ifName, label: attachment.label, netns: attachment.netns, args, runtime, config: list, result: result.raw });
    return result;
  }

  /**
   * CHECK: asks each plugin whether the cached result still holds. Needs
   * cniVersion 0.4.0 or later and a cached ADD; skipped for `disableCheck`.
   */
  async check(list: NetworkConfigList, attachment: CniAttachment, signal: AbortSignal): Promise<void> {
    checkAttachment(attachment);
    if (!supportsCheck(list)) {
      throw new CniError('InvalidConfig', `network ${attachment.label} has cniVersion ${list.cniVersion}, which has no CHECK: CHECK needs 0.4.0 or later`, { network: attachment.label });
    }
    if (list.disableCheck) return;
    const cached = await this.options.cache.read(attachment.containerId, attachment.ifName);
    if (cached === undefined) {
      throw new CniError('NetworkNotFound', `network ${attachment.label}: no cached result for ${attachment.containerId}/${attachment.ifName}, so there is nothing to CHECK: was it added?`, { network: attachment.label });
    }
    for (const plugin of list.plugins) {
      await execPlugin(
        {
          command: 'CHECK',
          type: plugin.type,
          input: pluginInput(list, plugin, { prevResult: cached.result, runtime: cached.runtime }),
          containerId: attachment.containerId,
          netns: attachment.netns,
          ifName: attachment.ifName,
          args: cached.args,
          network: attachment.label,
        },
        this.execOptions(signal),
      );
    }
  }

  /**
   * DEL: runs the plugins in reverse order with the cached result as
   * `prevResult`, then forgets the attachment. `list` is the config to use
   * when nothing is cached; with neither, there is nothing to delete.
   * Returns whether any plugin ran.
   */
  async del(list: NetworkConfigList | undefined, attachment: CniAttachment, signal: AbortSignal): Promise<boolean> {
    checkAttachment(attachment);
    const cached = await this.options.cache.read(attachment.containerId, attachment.ifName);
    // What was added is what must be removed: the cached config wins over today's NAD.
    const config = cached?.config ?? list;
    if (config === undefined) return false;
    const prevResult = cached !== undefined && versionAtLeast(config.cniVersion, '0.4.0') ? cached.result : undefined;
    for (const plugin of [...config.plugins].reverse()) {
      await execPlugin(
        {
          command: 'DEL',
          type: plugin.type,
          input: pluginInput(config, plugin, { ...(prevResult === undefined ? {} : { prevResult }), runtime: cached?.runtime ?? attachment.runtime ?? {} }),
          containerId: attachment.containerId,
          netns: cached?.netns ?? attachment.netns,
          ifName: attachment.ifName,
          args: cached?.args ?? argsString(attachment.args),
          network: attachment.label,
        },
        this.execOptions(signal),
      );
    }
    await this.options.cache.remove(attachment.containerId, attachment.ifName);
    return true;
  }

  /** What is cached for an interface of a container, if anything. */
  cached(containerId: string, ifName: string): Promise<CacheEntry | undefined> {
    return this.options.cache.read(containerId, ifName);
  }

  /** The interfaces of a container with a cached result (what a restarted agent must DEL). */
  cachedInterfaces(containerId: string): Promise<string[]> {
    return this.options.cache.interfaces(containerId);
  }

  /** VERSION: the spec versions a plugin speaks. */
  async versions(type: string, signal: AbortSignal): Promise<string[]> {
    const output = await execPlugin({ command: 'VERSION', type, input: { cniVersion: '1.0.0' } }, this.execOptions(signal));
    try {
      return decodeVersionInfo(output);
    } catch (err) {
      throw new CniError('InvalidResult', `plugin ${type} answered VERSION with something else: ${(err as Error).message}`, { plugin: type, cause: err });
    }
  }

  private execOptions(signal: AbortSignal): PluginExecOptions {
    return { cniPath: this.options.cniPath, pluginNetns: this.options.pluginNetns, timeoutMs: this.options.timeoutMs, signal };
  }

  private decode(output: unknown, type: string, label: string): CniResult {
    try {
      return decodeResult(output);
    } catch (err) {
      const why = err instanceof ResultShapeError ? err.message : String(err);
      throw new CniError('InvalidResult', `network ${label}: plugin ${type} returned something that is not a CNI result (${why})`, { network: label, plugin: type, cause: err });
    }
  }
}

const containerIdRe = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
// Linux interface names: at most 15 bytes, no '/', ':' or whitespace, not '.' or '..'.
const ifNameRe = /^(?!\.\.?$)[^/:\s]{1,15}$/;

/** Refuses names the spec (container ID) or the kernel (interface) would, before any plugin runs. */
function checkAttachment(attachment: CniAttachment): void {
  if (!containerIdRe.test(attachment.containerId)) {
    throw new CniError('InvalidConfig', `container ID "${attachment.containerId}" is not valid for CNI: use letters, digits, '_', '.' and '-', starting with a letter or digit`, { network: attachment.label });
  }
  if (!ifNameRe.test(attachment.ifName)) {
    throw new CniError('InvalidConfig', `interface name "${attachment.ifName}" is not a valid Linux interface name: at most 15 characters, without '/', ':' or spaces`, { network: attachment.label });
  }
}

/** `K=V;K=V`, as CNI_ARGS carries them. */
function argsString(args: readonly (readonly [string, string])[]): string {
  return args.map(([key, value]) => `${key}=${value}`).join(';');
}
