/**
 * The set of resources the server serves right now: built-in kinds plus one
 * entry per served version of every established CRD. Routing, discovery and
 * OpenAPI all read from here, so a CRD is usable the moment it is added.
 */
import type { ResourceDef } from '../api/resource.js';
import { groupVersion } from '../api/resource.js';

export class ResourceRegistry {
  private readonly byPath = new Map<string, ResourceDef>();
  /** Which source (built-ins, or `crd:<name>`) put each path there. */
  private readonly sourceOf = new Map<string, string>();
  /** Bumped on every change, so derived documents (discovery, OpenAPI) can be cached. */
  private generationCounter = 0;

  get generation(): number {
    return this.generationCounter;
  }

  /** Adds or replaces the definitions of one source (built-ins, or one CRD by name). */
  set(source: string, defs: ResourceDef[]): void {
    this.removeSource(source);
    for (const def of defs) {
      const key = pathKey(def.group, def.version, def.plural);
      this.byPath.set(key, def);
      this.sourceOf.set(key, source);
    }
    this.generationCounter++;
  }

  removeSource(source: string): void {
    for (const [key, owner] of this.sourceOf) {
      if (owner !== source) continue;
      this.byPath.delete(key);
      this.sourceOf.delete(key);
    }
    this.generationCounter++;
  }

  lookup(group: string, version: string, plural: string): ResourceDef | undefined {
    return this.byPath.get(pathKey(group, version, plural));
  }

  /**
   * The definition that owns a store key prefix: `group` + `plural`, any
   * served version (all versions share storage). Prefers the preferred version.
   */
  lookupStorage(group: string, plural: string): ResourceDef | undefined {
    const versions = this.groups().get(group) ?? [];
    for (const v of versions) {
      const def = this.lookup(group, v, plural);
      if (def !== undefined) return def;
    }
    return undefined;
  }

  /** The definition for a kind in a group-version (`apiVersion` + `kind` of an object). */
  lookupKind(apiVersion: string, kind: string): ResourceDef | undefined {
    for (const def of this.byPath.values()) if (groupVersion(def) === apiVersion && def.kind === kind) return def;
    return undefined;
  }

  /** Every served version of a group's resource (for cross-version storage questions). */
  all(): ResourceDef[] {
    return [...this.byPath.values()];
  }

  /** Group → versions (preferred first, Kubernetes' version priority). */
  groups(): Map<string, string[]> {
    const out = new Map<string, Set<string>>();
    for (const def of this.byPath.values()) {
      let versions = out.get(def.group);
      if (versions === undefined) out.set(def.group, (versions = new Set()));
      versions.add(def.version);
    }
    return new Map([...out].map(([g, vs]) => [g, [...vs].sort(compareVersions)]));
  }

  inGroupVersion(group: string, version: string): ResourceDef[] {
    return this.all()
      .filter((d) => d.group === group && d.version === version)
      .sort((a, b) => a.plural.localeCompare(b.plural));
  }
}

function pathKey(group: string, version: string, plural: string): string {
  return `${group}/${version}/${plural}`;
}

/**
 * Kubernetes' version priority: GA > beta > alpha, higher numbers first,
 * then non-conforming names alphabetically.
 */
export function compareVersions(a: string, b: string): number {
  return versionRank(b) - versionRank(a) || a.localeCompare(b);
}

function versionRank(v: string): number {
  const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
  if (m === null) return -1;
  const major = Number(m[1]);
  const stage = m[2] === undefined ? 3 : m[2] === 'beta' ? 2 : 1;
  const minor = m[3] === undefined ? 0 : Number(m[3]);
  return stage * 1_000_000 + major * 1000 + minor;
}
