/**
 * Host routes for VMIs that keep their pod addresses on another node (live
 * migration keeps them): an address outside the pod ranges of the node
 * that runs the VMI gets, on every other node, a /32 or /128 route via
 * that node, more specific than the route to the range it came from (and,
 * on the node that owns the range, than its own bridge's connected route);
 * on the node that runs it, a route onto its bridge. Pure; the routes are
 * installed with the node routes (`proto 211`, src/agent/pod-routes.ts).
 */
import type { Cidr } from './cidr.js';
import { contains, parseAddress, parseCidr } from './cidr.js';
import type { PodRoute, RouteNode, SkippedRoute } from './node-routes.js';
import { nexthopOf } from './node-routes.js';

/** What the routes need of one VMI: where it runs and its pod addresses (no prefix). */
export interface RoutedVmi {
  /** namespace/name, for the reasons of skipped routes. */
  key: string;
  node: string;
  ips: readonly string[];
}

function cidrsOf(node: RouteNode): Cidr[] {
  return node.podCidrs.flatMap((text) => {
    try {
      return [parseCidr(text)];
    } catch {
      return [];
    }
  });
}

/**
 * The host routes `self` wants: via the VMI's node for each address of a
 * VMI running elsewhere outside its node's ranges, and onto `local.bridge`
 * for `local.ips` (addresses of other ranges whose guests run here).
 */
export function movedVmiRoutes(vmis: readonly RoutedVmi[], nodes: readonly RouteNode[], self: string, local: { bridge: string; ips: readonly string[] }): { routes: PodRoute[]; skipped: SkippedRoute[] } {
  const routes: PodRoute[] = [];
  const skipped: SkippedRoute[] = [];
  const byName = new Map(nodes.map((n) => [n.name, n]));
  for (const ip of local.ips) {
    const parsed = parseAddress(ip);
    if (parsed !== undefined) routes.push({ node: self, destination: `${ip}/${parsed.family === 4 ? 32 : 128}`, family: parsed.family, dev: local.bridge });
  }
  for (const vmi of [...vmis].sort((a, b) => a.key.localeCompare(b.key))) {
    if (vmi.node === self) continue;
    const node = byName.get(vmi.node);
    if (node === undefined) continue;
    const ranges = cidrsOf(node);
    for (const ip of vmi.ips) {
      const parsed = parseAddress(ip);
      if (parsed === undefined || ranges.some((r) => r.family === parsed.family && contains(r, parsed.value))) continue;
      const destination = `${ip}/${parsed.family === 4 ? 32 : 128}`;
      const nexthop = nexthopOf(node, parsed.family);
      if ('reason' in nexthop) skipped.push({ node: node.name, destination, reason: `VMI ${vmi.key} keeps ${ip} on node ${node.name}, but ${nexthop.reason}` });
      else routes.push({ node: node.name, destination, family: parsed.family, ...nexthop });
    }
  }
  return { routes, skipped };
}
