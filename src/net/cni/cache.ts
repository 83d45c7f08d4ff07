/**
 * The runtime's memory of what it attached, on disk as libcni keeps
 * /var/lib/cni/results: one file per attachment (container ID + interface)
 * with the network config it was added with and the result it got. DEL
 * reads it for `prevResult` and, when the NetworkAttachmentDefinition is
 * gone or the agent restarted, for the config itself.
 */
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isPlainObject } from '../../api/object.js';
import type { NetworkConfigList, RuntimeValues } from './config.js';
import { parseNetworkConfig } from './config.js';

/** One cached attachment. */
export interface CacheEntry {
  containerId: string;
  ifName: string;
  /** Who asked for it, in the caller's words (the NAD's `namespace/name`). */
  label: string;
  netns: string;
  args: string;
  runtime: RuntimeValues;
  config: NetworkConfigList;
  /** The last plugin's result as it wrote it (the next operation's `prevResult`). */
  result: Record<string, unknown>;
}

const kind = 'vireoCniCacheV1';
const safeName = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Reads and writes cache entries under `dir` (`<dir>/<containerId>/<ifName>.json`). */
export class ResultCache {
  constructor(private readonly dir: string) {}

  async write(entry: CacheEntry): Promise<void> {
    const folder = join(this.dir, checked(entry.containerId));
    await mkdir(folder, { recursive: true, mode: 0o700 });
    const path = join(folder, `${checked(entry.ifName)}.json`);
    const config = { name: entry.config.name, cniVersion: entry.config.cniVersion, disableCheck: entry.config.disableCheck, plugins: entry.config.plugins.map((p) => p.config) };
    const body = { kind, ...entry, config };
    // Written aside and renamed, so a crash never leaves half a file for DEL to trip on.
    const temporary = `${path}.tmp`;
    await writeFile(temporary, JSON.stringify(body), { mode: 0o600 });
    await rename(temporary, path);
  }

  async read(containerId: string, ifName: string): Promise<CacheEntry | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.dir, checked(containerId), `${checked(ifName)}.json`), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return decodeEntry(text);
  }

  /** The interfaces cached for a container, in name order. */
  async interfaces(containerId: string): Promise<string[]> {
    try {
      const files = await readdir(join(this.dir, checked(containerId)));
      return files.filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async remove(containerId: string, ifName: string): Promise<void> {
    const folder = join(this.dir, checked(containerId));
    await rm(join(folder, `${checked(ifName)}.json`), { force: true });
    // The container's folder goes with its last interface.
    if ((await this.interfaces(containerId)).length === 0) await rm(folder, { recursive: true, force: true });
  }
}

/** A cache entry that does not read back is treated as absent: DEL then runs with the config it is given. */
function decodeEntry(text: string): CacheEntry | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isPlainObject(raw) || raw.kind !== kind || !isPlainObject(raw.result) || !isPlainObject(raw.runtime)) return undefined;
  const { containerId, ifName, label, netns, args } = raw;
  if (typeof containerId !== 'string' || typeof ifName !== 'string' || typeof label !== 'string' || typeof netns !== 'string' || typeof args !== 'string') return undefined;
  let config: NetworkConfigList;
  try {
    config = parseNetworkConfig(JSON.stringify(raw.config), { source: `cached attachment ${containerId}/${ifName}` });
  } catch {
    return undefined;
  }
  const runtime: RuntimeValues = typeof raw.runtime.mac === 'string' ? { mac: raw.runtime.mac } : {};
  return { containerId, ifName, label, netns, args, runtime, config, result: raw.result };
}

function checked(part: string): string {
  if (!safeName.test(part)) throw new Error(`"${part}" cannot name a CNI cache file: use letters, digits, '.', '_' and '-'`);
  return part;
}
