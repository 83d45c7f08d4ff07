/**
 * The cluster's endpoints indexed by namespace and by label, built once
 * per compile: a selector with an equality or `In` requirement is matched
 * only against the endpoints carrying one of its values, not against
 * every endpoint of the cluster. With a thousand policies over a thousand
 * VMIs that is the difference between a million label matches and a few
 * thousand; the answers are the same (every candidate still passes the
 * full selector).
 */
import type { LabelSelector } from '../../api/labels.js';
import type { PolicyEndpoint } from './model.js';

export class EndpointIndex {
  private readonly byNamespace = new Map<string, PolicyEndpoint[]>();
  private readonly byLabel = new Map<string, PolicyEndpoint[]>();

  constructor(readonly all: readonly PolicyEndpoint[]) {
    for (const endpoint of all) {
      append(this.byNamespace, endpoint.namespace, endpoint);
      for (const [key, value] of Object.entries(endpoint.labels)) append(this.byLabel, labelKey(key, value), endpoint);
    }
  }

  /** The endpoints of `namespace`. */
  inNamespace(namespace: string): readonly PolicyEndpoint[] {
    return this.byNamespace.get(namespace) ?? [];
  }

  /**
   * A superset of the endpoints `selector` matches (in `namespace` when
   * given), in cluster order: those carrying a value of its narrowest
   * equality or `In` requirement, else all of them.
   */
  candidates(selector: LabelSelector, namespace: string | undefined): readonly PolicyEndpoint[] {
    let narrowest: readonly PolicyEndpoint[] | undefined;
    for (const requirement of selector.requirements) {
      if (requirement.operator !== 'Equals' && requirement.operator !== 'DoubleEquals' && requirement.operator !== 'In') continue;
      const found = requirement.values.flatMap((value) => this.byLabel.get(labelKey(requirement.key, value)) ?? []);
      if (narrowest === undefined || found.length < narrowest.length) narrowest = requirement.values.length > 1 ? inClusterOrder(found, this.all) : found;
    }
    const scoped = namespace === undefined ? this.all : this.inNamespace(namespace);
    if (narrowest === undefined) return scoped;
    return namespace === undefined ? narrowest : narrowest.filter((endpoint) => endpoint.namespace === namespace);
  }
}

function labelKey(key: string, value: string): string {
  return `${key}\u0000${value}`;
}

function append(map: Map<string, PolicyEndpoint[]>, key: string, endpoint: PolicyEndpoint): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [endpoint]);
  else list.push(endpoint);
}

/** `found` (from several index lists) deduplicated and in the order of `all`, so the compiled text does not depend on the index. */
function inClusterOrder(found: readonly PolicyEndpoint[], all: readonly PolicyEndpoint[]): PolicyEndpoint[] {
  const wanted = new Set(found);
  return all.filter((endpoint) => wanted.has(endpoint));
}
