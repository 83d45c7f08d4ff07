/**
 * A VMI's secondary networks, as Multus attaches them to a pod: each
 * `networks[].multus` entry names a NetworkAttachmentDefinition whose CNI
 * config is run (ADD) in the VMI's sandbox netns, in order, as net1, net2…
 * All or nothing: when one fails, the ones already added are deleted again
 * and the error names the NAD and carries the plugin's own message. Detach
 * deletes what the cache says was added, even after an agent restart or
 * when the NAD is gone.
 */
import { stringAt } from '../../api/kinds/read.js';
import type { Client } from '../../client/index.js';
import { resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import type { NetworkConfigList } from './config.js';
import { findConfFile, parseNetworkConfig } from './config.js';
import { CniError, isAbort } from './errors.js';
import type { CniResult } from './result.js';
import type { CniAttachment, CniRuntime } from './runtime.js';

/** Multus reads the config of a NAD without `spec.config` from here. */
export const defaultMultusConfDir = '/etc/cni/multus/net.d';

/** The VMI the sandbox belongs to (its names go to plugins as Multus passes a pod's). */
export interface VmiIdentity {
  namespace: string;
  name: string;
  uid: string;
}

/** The sandbox the interfaces go into. */
export interface Sandbox {
  /** Its netns: a path (`/run/netns/NAME`) or a name under /run/netns. */
  netns: string;
  vmi: VmiIdentity;
}

/** One `networks[].multus` entry to attach. */
export interface NetworkRequest {
  /** `networks[].multus.networkName`: `namespace/name`, or `name` in the VMI's namespace. */
  networkName: string;
  /** net1, net2…, in the order of the VMI's networks. */
  interfaceName: string;
  /** The interface's MAC, for plugins with the `mac` capability (e.g. `tuning`). */
  mac?: string;
}

/** A network attached: which NAD, which interface, and what the plugins reported. */
export interface AttachedNetwork {
  /** The NAD as `namespace/name`. */
  network: string;
  interfaceName: string;
  result: CniResult;
}

export interface SecondaryNetworksOptions {
  client: Client;
  runtime: CniRuntime;
  logger: Logger;
  /** Where a NAD without `spec.config` finds its config; default {@link defaultMultusConfDir}. */
  confDir?: string;
}

interface ResolvedRequest {
  request: NetworkRequest;
  network: string;
  config: NetworkConfigList;
}

export class SecondaryNetworks {
  private readonly client: Client;
  private readonly runtime: CniRuntime;
  private readonly logger: Logger;
  private readonly confDir: string;
  /** The last operation per sandbox: attach, check and detach of one VMI run one after another, never interleaved. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(options: SecondaryNetworksOptions) {
    this.client = options.client;
    this.runtime = options.runtime;
    this.logger = options.logger.child({ component: 'cni' });
    this.confDir = options.confDir ?? defaultMultusConfDir;
  }

  /**
   * ADDs every requested network into the sandbox, in order. Every NAD is
   * resolved before any plugin runs; on a failure the networks already
   * added (and the failing one) are deleted again, and the error is thrown.
   */
  attach(sandbox: Sandbox, requests: readonly NetworkRequest[], options: { signal: AbortSignal }): Promise<AttachedNetwork[]> {
    return this.serialized(sandbox, () => this.attachNow(sandbox, requests, options.signal));
  }

  private async attachNow(sandbox: Sandbox, requests: readonly NetworkRequest[], signal: AbortSignal): Promise<AttachedNetwork[]> {
    const resolved: ResolvedRequest[] = [];
    for (const request of requests) {
      const network = qualifiedName(request.networkName, sandbox.vmi.namespace);
      resolved.push({ request, network, config: await this.resolve(network) });
    }
    const attached: { entry: ResolvedRequest; result: CniResult }[] = [];
    for (const entry of resolved) {
      try {
        attached.push({ entry, result: await this.runtime.add(entry.config, attachmentOf(sandbox, entry.request, entry.network), signal) });
      } catch (err) {
        await this.rollBack([...attached.map((a) => a.entry), entry], sandbox);
        throw err;
      }
    }
    return attached.map(({ entry, result }) => ({ network: entry.network, interfaceName: entry.request.interfaceName, result }));
  }

  /**
   * CHECKs every requested network against what its ADD reported, with the
   * config it was added with (after an agent restart: are the interfaces
   * still as they were?). Throws the first plugin's complaint.
   */
  check(sandbox: Sandbox, requests: readonly NetworkRequest[], options: { signal: AbortSignal }): Promise<void> {
    return this.serialized(sandbox, () => this.checkNow(sandbox, requests, options.signal));
  }

  private async checkNow(sandbox: Sandbox, requests: readonly NetworkRequest[], signal: AbortSignal): Promise<void> {
    for (const request of requests) {
      const network = qualifiedName(request.networkName, sandbox.vmi.namespace);
      const cached = await this.runtime.cached(containerIdOf(sandbox.vmi), request.interfaceName);
      if (cached === undefined) {
        throw new CniError('NetworkNotFound', `network ${network} is not attached as ${request.interfaceName}: nothing is cached for it, so it must be added again`, { network });
      }
      await this.runtime.check(cached.config, attachmentOf(sandbox, request, cached.label), signal);
    }
  }

  /**
   * DELs the requested networks (in reverse order) and any other interface
   * the cache remembers for this sandbox. Each uses the config it was
   * added with; without a cache, today's NAD (a NAD that is gone then has
   * nothing to delete). All are tried; the first failure is thrown at the end.
   */
  detach(sandbox: Sandbox, requests: readonly NetworkRequest[], options: { signal: AbortSignal }): Promise<void> {
    return this.serialized(sandbox, () => this.detachNow(sandbox, requests, options.signal));
  }

  private async detachNow(sandbox: Sandbox, requests: readonly NetworkRequest[], signal: AbortSignal): Promise<void> {
    const containerId = containerIdOf(sandbox.vmi);
    const byInterface = new Map(requests.map((r) => [r.interfaceName, r]));
    const interfaces = [...new Set([...requests.map((r) => r.interfaceName), ...(await this.runtime.cachedInterfaces(containerId))])].reverse();
    let first: Error | undefined;
    for (const ifName of interfaces) {
      const request = byInterface.get(ifName);
      try {
        await this.detachOne(sandbox, ifName, request, signal);
      } catch (err) {
        if (isAbort(err)) throw err;
        this.logger.warn('deleting a secondary network failed', { ...objectFields(sandbox.vmi), interface: ifName, err });
        first ??= err instanceof Error ? err : new Error(String(err));
      }
    }
    if (first !== undefined) throw first;
  }

  private async detachOne(sandbox: Sandbox, ifName: string, request: NetworkRequest | undefined, signal: AbortSignal): Promise<void> {
    const cached = await this.runtime.cached(containerIdOf(sandbox.vmi), ifName);
    const network = cached?.label ?? (request === undefined ? ifName : qualifiedName(request.networkName, sandbox.vmi.namespace));
    let config: NetworkConfigList | undefined;
    if (cached === undefined) {
      try {
        config = await this.resolve(network);
      } catch (err) {
        // Never added (no cache) and no config to DEL with: there is nothing of it to remove.
        if (err instanceof CniError && (err.failure === 'NetworkNotFound' || err.failure === 'InvalidConfig')) return;
        throw err;
      }
    }
    const synthetic: NetworkRequest = request ?? { networkName: network, interfaceName: ifName };
    await this.runtime.del(config, attachmentOf(sandbox, synthetic, network), signal);
  }

  /** Best-effort DEL of what a failed attach made, newest first; its failures are logged, the ADD error is what the caller sees. */
  private async rollBack(entries: ResolvedRequest[], sandbox: Sandbox): Promise<void> {
    // The caller's signal may be what failed the ADD; the undo must still run.
    const signal = AbortSignal.timeout(120_000);
    for (const entry of [...entries].reverse()) {
      try {
        await this.runtime.del(entry.config, attachmentOf(sandbox, entry.request, entry.network), signal);
      } catch (err) {
        this.logger.warn('undoing a secondary network after a failed attach failed', { ...objectFields(sandbox.vmi), network: entry.network, interface: entry.request.interfaceName, err });
      }
    }
  }

  /** Runs `operation` after the sandbox's previous one has settled. */
  private async serialized<T>(sandbox: Sandbox, operation: () => Promise<T>): Promise<T> {
    const key = containerIdOf(sandbox.vmi);
    const previous = this.queues.get(key) ?? Promise.resolve();
    const current = previous.catch(() => undefined).then(operation);
    this.queues.set(key, current);
    try {
      return await current;
    } finally {
      if (this.queues.get(key) === current) this.queues.delete(key);
    }
  }

  /** The CNI config of a NAD (`namespace/name`): its `spec.config`, else Multus' conf file of that name. */
  private async resolve(network: string): Promise<NetworkConfigList> {
    const [namespace, name] = splitName(network);
    const source = `network-attachment-definition ${network}`;
    const nad = await this.client.tryGet(resources.networkAttachmentDefinitions, namespace, name);
    if (nad === undefined) {
      throw new CniError('NetworkNotFound', `${source} not found: create it, or fix networks[].multus.networkName`, { network });
    }
    const text = stringAt(nad, 'spec', 'config');
    if (text !== undefined && text.trim() !== '') return parseNetworkConfig(text, { source, defaultName: name });
    const fromFile = await findConfFile(this.confDir, name);
    if (fromFile === undefined) {
      throw new CniError(
        'NetworkNotFound',
        `${source} has no spec.config, and no CNI conf file in ${this.confDir} names network "${name}": add spec.config, or the conf file`,
        { network },
      );
    }
    return fromFile;
  }
}

/** `networkName` as `namespace/name` (a bare name is in the VMI's namespace). */
export function qualifiedName(networkName: string, namespace: string): string {
  return networkName.includes('/') ? networkName : `${namespace}/${networkName}`;
}

function splitName(network: string): [string, string] {
  const slash = network.indexOf('/');
  return [network.slice(0, slash), network.slice(slash + 1)];
}

/** The sandbox's `CNI_CONTAINERID`: the VMI's uid, stable for the VMI's life. */
function containerIdOf(vmi: VmiIdentity): string {
  return vmi.uid;
}

function attachmentOf(sandbox: Sandbox, request: NetworkRequest, network: string): CniAttachment {
  const containerId = containerIdOf(sandbox.vmi);
  // The CNI_ARGS Multus passes for a pod, with the VMI in the pod's place.
  const args: [string, string][] = [
    ['IgnoreUnknown', 'true'],
    ['K8S_POD_NAMESPACE', sandbox.vmi.namespace],
    ['K8S_POD_NAME', sandbox.vmi.name],
    ['K8S_POD_INFRA_CONTAINER_ID', containerId],
    ['K8S_POD_UID', sandbox.vmi.uid],
  ];
  if (request.mac !== undefined) args.push(['MAC', request.mac]);
  return {
    containerId,
    netns: sandbox.netns.startsWith('/') ? sandbox.netns : `/run/netns/${sandbox.netns}`,
    ifName: request.interfaceName,
    args,
    ...(request.mac === undefined ? {} : { runtime: { mac: request.mac } }),
    label: network,
  };
}

function objectFields(vmi: VmiIdentity): Record<string, string> {
  return { namespace: vmi.namespace, name: vmi.name, uid: vmi.uid };
}
