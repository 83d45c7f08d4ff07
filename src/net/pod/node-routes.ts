/**
 * The routes between nodes' pod ranges (the "host-gw" model of flannel, and
 * of Calico without BGP): in the node's own network namespace, one route
 * per other node's pod range via that node's address on the shared link.
 * No encapsulation, so every node must be on one L2 segment; a nexthop
 * that is not on a link of this node (the kernel would send it through a
 * gateway) or is this node's own address gets no route, with the reason.
 *
 * The routes carry their own routing protocol number ({@link podRouteProtocol},
 * `proto 211` in `ip route`), so an agent finds exactly its routes after a
 * restart, replaces those that changed and deletes those of Nodes that are
 * gone, and never touches anyone else's. One agent per network namespace
 * owns them.
 *
 * IPv6 pod ranges go via the node's IPv6 address; a node with only IPv4
 * addresses is reached at the IPv6 link-local address it publishes
 * ({@link linkLocalAnnotation}) on the interface that reaches its IPv4
 * address. Linux does not take an IPv4 nexthop for an IPv6 route
 * (`via inet`: "IPv6 does not support RTA_VIA attribute", kernel 6.18),
 * only the other way round.
 */
import { runTool } from '../../host/run-tool.js';
import type { Cidr } from './cidr.js';
import { formatCidr, parseAddress, parseCidr, sizeOf } from './cidr.js';

/** The routing protocol number of Vireo's routes: free in iproute2's `rt_protos`. */
export const podRouteProtocol = 211;

/** The Node annotation holding the node's IPv6 link-local address, the nexthop of its IPv6 pod range for nodes with no IPv6 address. */
export const linkLocalAnnotation = 'vireo.io/ipv6-link-local';

/** What the routes need of one Node. */
export interface RouteNode {
  name: string;
  podCidrs: readonly string[];
  /** Its InternalIP addresses, as `status.addresses` lists them. */
  addresses: readonly string[];
  /** Its published IPv6 link-local address, when it has one. */
  linkLocal?: string;
}

/** One wanted route: `destination` via `via` (an on-link address, or a link-local one on `viaOf`'s link), or straight onto `dev`. */
export type PodRoute = PodRouteVia | PodRouteOnDevice;

export interface PodRouteVia {
  node: string;
  destination: string;
  family: 4 | 6;
  via: string;
  /** For a link-local nexthop: the node address whose link it is on (the interface is the one that reaches it). */
  linkOf?: string;
}

/** A route onto an interface of this node (a migrated VMI's address, onto the node bridge where its sandbox is). */
export interface PodRouteOnDevice {
  node: string;
  destination: string;
  family: 4 | 6;
  dev: string;
}

/** Where `node` is reached for `family` pod traffic: its InternalIP of that family, else (IPv6) its published link-local address; or why not. */
export function nexthopOf(node: RouteNode, family: 4 | 6): { via: string; linkOf?: string } | { reason: string } {
  const v4 = node.addresses.find((a) => parseAddress(a)?.family === 4);
  const v6 = node.addresses.find((a) => parseAddress(a)?.family === 6);
  if (family === 4) return v4 === undefined ? { reason: 'the Node has no IPv4 InternalIP to route its IPv4 pod range to' } : { via: v4 };
  if (v6 !== undefined) return { via: v6 };
  if (node.linkLocal !== undefined && v4 !== undefined && /^fe80:/i.test(node.linkLocal) && parseAddress(node.linkLocal)?.family === 6) return { via: node.linkLocal, linkOf: v4 };
  return { reason: `the Node has no IPv6 InternalIP and publishes no IPv6 link-local address (annotation ${linkLocalAnnotation}) to route its IPv6 pod range to` };
}

/** A Node that gets no route (or not for one of its ranges), and why. */
export interface SkippedRoute {
  node: string;
  destination?: string;
  reason: string;
}

/** The routes `self` wants to every other node's pod ranges. Pure. */
export function desiredPodRoutes(nodes: readonly RouteNode[], self: string): { routes: PodRoute[]; skipped: SkippedRoute[] } {
  const routes: PodRoute[] = [];
  const skipped: SkippedRoute[] = [];
  const own = nodes.find((n) => n.name === self)?.podCidrs.flatMap((c) => parsedOrEmpty(c)) ?? [];
  const taken: Cidr[] = [...own];
  for (const node of [...nodes].sort((a, b) => a.name.localeCompare(b.name))) {
    if (node.name === self) continue;
    for (const text of node.podCidrs) {
      const cidr = parsedOrEmpty(text)[0];
      if (cidr === undefined) {
        skipped.push({ node: node.name, destination: text, reason: `spec.podCIDRs holds "${text}", which is not a CIDR` });
        continue;
      }
      const destination = formatCidr(cidr);
      const clash = taken.find((t) => overlaps(t, cidr));
      if (clash !== undefined) {
        skipped.push({ node: node.name, destination, reason: `it overlaps ${formatCidr(clash)}, another node's pod range (or this node's): the node IPAM never hands out overlapping ranges, so one Node's spec.podCIDRs was set by hand` });
        continue;
      }
      taken.push(cidr);
      const nexthop = nexthopOf(node, cidr.family);
      if ('reason' in nexthop) skipped.push({ node: node.name, destination, reason: nexthop.reason });
      else routes.push({ node: node.name, destination, family: cidr.family, ...nexthop });
    }
  }
  return { routes, skipped };
}

/** Every pod range of `nodes` (the cluster's pod ranges, as far as Nodes tell), formatted; ranges that do not parse are left out. */
export function clusterPodRanges(nodes: readonly RouteNode[]): string[] {
  return [...new Set(nodes.flatMap((n) => n.podCidrs.flatMap((c) => parsedOrEmpty(c).map(formatCidr))))].sort();
}

function parsedOrEmpty(text: string): Cidr[] {
  try {
    return [parseCidr(text)];
  } catch {
    return [];
  }
}

function overlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  return a.base <= b.base + sizeOf(b) - 1n && b.base <= a.base + sizeOf(a) - 1n;
}

/** A route of {@link podRouteProtocol} found in the kernel. */
export interface InstalledRoute {
  destination: string;
  family: 4 | 6;
  via: string | undefined;
  dev: string | undefined;
}

/** Parses `ip -j route show` output; entries that are not routes with a destination are skipped. */
export function parseRouteList(text: string, family: 4 | 6): InstalledRoute[] {
  const parsed: unknown = JSON.parse(text === '' ? '[]' : text);
  if (!Array.isArray(parsed)) throw new Error(`ip -j route show printed ${text.slice(0, 80)}, not a list`);
  const out: InstalledRoute[] = [];
  for (const entry of parsed as unknown[]) {
    if (typeof entry !== 'object' || entry === null) continue;
    const record = entry as Record<string, unknown>;
    const dst = record.dst;
    if (typeof dst !== 'string') continue;
    const via = typeof record.gateway === 'string' ? record.gateway : undefined;
    const dev = typeof record.dev === 'string' ? record.dev : undefined;
    // The kernel prints a host route without its prefix.
    const destination = dst.includes('/') ? dst : `${dst}/${family === 4 ? 32 : 128}`;
    out.push({ destination, family, via, dev });
  }
  return out;
}

/** How a nexthop address is reached from this namespace. */
type Reach = { kind: 'onLink'; dev: string } | { kind: 'local' } | { kind: 'viaGateway'; gateway: string } | { kind: 'unreachable'; why: string };

async function reachOf(address: string, signal: AbortSignal): Promise<Reach> {
  let text: string;
  try {
    text = await runTool('ip', ['-j', 'route', 'get', address], { signal, timeoutMs: 10_000 });
  } catch (err) {
    return { kind: 'unreachable', why: err instanceof Error ? err.message : String(err) };
  }
  const parsed: unknown = JSON.parse(text);
  const first: unknown = Array.isArray(parsed) ? parsed[0] : undefined;
  if (typeof first !== 'object' || first === null) return { kind: 'unreachable', why: 'ip route get printed no route' };
  const route = first as Record<string, unknown>;
  if (route.type === 'local') return { kind: 'local' };
  if (typeof route.gateway === 'string') return { kind: 'viaGateway', gateway: route.gateway };
  if (typeof route.dev !== 'string') return { kind: 'unreachable', why: 'ip route get named no interface' };
  return { kind: 'onLink', dev: route.dev };
}

/** What one sync did. */
export interface RouteSyncResult {
  installed: string[];
  removed: string[];
  skipped: SkippedRoute[];
}

function describe(route: PodRoute): string {
  return 'dev' in route ? `${route.destination} dev ${route.dev} (${route.node})` : `${route.destination} via ${route.via} (${route.node})`;
}

/**
 * Makes this namespace's routes of {@link podRouteProtocol} exactly
 * `routes` (those whose nexthop is on a link of this node): replaces the
 * missing or changed ones, deletes the others. A route the kernel refuses
 * is reported as skipped; the rest still go in.
 */
export async function syncPodRoutes(routes: readonly PodRoute[], signal: AbortSignal): Promise<RouteSyncResult> {
  const result: RouteSyncResult = { installed: [], removed: [], skipped: [] };
  const installed = await installedPodRoutes(signal);
  const wanted = new Map<string, { route: PodRoute; dev: string }>();
  for (const route of routes) {
    if ('dev' in route) {
      wanted.set(route.destination, { route, dev: route.dev });
      continue;
    }
    const reach = await reachOf(route.linkOf ?? route.via, signal);
    if (reach.kind !== 'onLink') {
      const reason = reach.kind === 'local'
        ? `${route.linkOf ?? route.via} is an address of this host: a Node that shares this host's address cannot be routed to`
        : reach.kind === 'viaGateway'
          ? `${route.linkOf ?? route.via} is not on a link of this host (it is reached through ${reach.gateway}): pod routes need every node on one L2 segment; VXLAN between nodes is not built`
          : `${route.linkOf ?? route.via} cannot be reached: ${reach.why}`;
      result.skipped.push({ node: route.node, destination: route.destination, reason });
      continue;
    }
    wanted.set(route.destination, { route, dev: reach.dev });
  }
  for (const found of installed) {
    const want = wanted.get(found.destination);
    if (want !== undefined && ('via' in want.route ? want.route.via : undefined) === found.via && want.dev === found.dev) {
      wanted.delete(found.destination);
      continue;
    }
    if (want !== undefined) continue; // replaced below
    await runTool('ip', [`-${found.family}`, 'route', 'del', found.destination, 'proto', String(podRouteProtocol)], { signal, timeoutMs: 10_000 });
    result.removed.push(found.destination);
  }
  for (const { route, dev } of wanted.values()) {
    try {
      const nexthop = 'via' in route ? ['via', route.via] : [];
      await runTool('ip', [`-${route.family}`, 'route', 'replace', route.destination, ...nexthop, 'dev', dev, 'proto', String(podRouteProtocol)], { signal, timeoutMs: 10_000 });
      result.installed.push(describe(route));
    } catch (err) {
      result.skipped.push({ node: route.node, destination: route.destination, reason: `the kernel refused the route: ${err instanceof Error ? err.message : String(err)}` });
    }
  }
  return result;
}

/** The routes of {@link podRouteProtocol} in this namespace, both families. */
export async function installedPodRoutes(signal: AbortSignal): Promise<InstalledRoute[]> {
  const out: InstalledRoute[] = [];
  for (const family of [4, 6] as const) {
    out.push(...parseRouteList(await runTool('ip', ['-j', `-${family}`, 'route', 'show', 'proto', String(podRouteProtocol)], { signal, timeoutMs: 10_000 }), family));
  }
  return out;
}

/** Deletes every route of {@link podRouteProtocol} in this namespace; the destinations removed. */
export async function removePodRoutes(signal: AbortSignal): Promise<string[]> {
  const removed: string[] = [];
  for (const found of await installedPodRoutes(signal)) {
    await runTool('ip', [`-${found.family}`, 'route', 'del', found.destination, 'proto', String(podRouteProtocol)], { signal, timeoutMs: 10_000 });
    removed.push(found.destination);
  }
  return removed;
}

/**
 * This namespace's IPv6 link-local address on the interface that holds
 * `address` (the node's InternalIP), once it is past duplicate address
 * detection; undefined when there is none.
 */
export async function linkLocalBeside(address: string, signal: AbortSignal): Promise<string | undefined> {
  const parsed: unknown = JSON.parse(await runTool('ip', ['-j', 'addr', 'show'], { signal, timeoutMs: 10_000 }));
  if (!Array.isArray(parsed)) return undefined;
  for (const link of parsed as unknown[]) {
    if (typeof link !== 'object' || link === null) continue;
    const infos = (link as Record<string, unknown>).addr_info;
    if (!Array.isArray(infos)) continue;
    const entries = infos.filter((i): i is Record<string, unknown> => typeof i === 'object' && i !== null);
    if (!entries.some((i) => i.local === address)) continue;
    const linkLocal = entries.find((i) => i.family === 'inet6' && i.scope === 'link' && typeof i.local === 'string' && i.tentative !== true && i.dadfailed !== true);
    return typeof linkLocal?.local === 'string' ? linkLocal.local : undefined;
  }
  return undefined;
}
