/**
 * The order API groups are listed in by discovery, as kube-apiserver's
 * aggregator lists them: by each group's priority (the APIService's
 * `groupPriorityMinimum`), highest first, then by name. Built-in groups
 * carry the priorities kube-apiserver registers them with; every other
 * group (CRDs, and the aggregated KubeVirt/CDI groups, which register at
 * 1000) comes after them.
 *
 * Why the order matters: kubectl resolves a bare resource name such as
 * `networkpolicy` to the first group in discovery that has it, so
 * Calico's `crd.projectcalico.org` NetworkPolicy must come after
 * `networking.k8s.io`'s, as it does in a real cluster.
 */

/** kube-apiserver's group priorities for its built-in groups (`groupPriorityMinimum`). */
const builtinGroupPriorities: ReadonlyMap<string, number> = new Map([
  ['', 18000],
  ['apps', 17800],
  ['events.k8s.io', 17750],
  ['authentication.k8s.io', 17700],
  ['authorization.k8s.io', 17600],
  ['autoscaling', 17500],
  ['batch', 17400],
  ['certificates.k8s.io', 17300],
  ['networking.k8s.io', 17200],
  ['policy', 17100],
  ['rbac.authorization.k8s.io', 17000],
  ['storage.k8s.io', 16800],
  ['apiextensions.k8s.io', 16700],
  ['admissionregistration.k8s.io', 16700],
  ['scheduling.k8s.io', 16600],
  ['coordination.k8s.io', 16500],
  ['node.k8s.io', 16300],
  ['discovery.k8s.io', 16200],
  ['flowcontrol.apiserver.k8s.io', 16100],
  ['resource.k8s.io', 15900],
]);

/** The priority of groups kube-apiserver does not build in: CRDs' and aggregated APIs'. */
export const extensionGroupPriority = 1000;

/** A group's discovery priority; higher is listed first. */
export function groupPriority(group: string): number {
  return builtinGroupPriorities.get(group) ?? extensionGroupPriority;
}

/** Compares two group names in discovery order. */
export function compareGroups(a: string, b: string): number {
  const byPriority = groupPriority(b) - groupPriority(a);
  if (byPriority !== 0) return byPriority;
  return a < b ? -1 : a > b ? 1 : 0;
}
