/**
 * One cgroup per VMI, holding its QEMU (what a virt-launcher pod's cgroup
 * is in KubeVirt): the guest's CPU weight follows its CPU request, its
 * memory is capped when the VMI sets a memory limit, and its CPU, memory
 * and task counts are accounted there for metrics.
 *
 * All VMI cgroups sit under one parent (`vireo` by default), so the guests
 * together compete for CPU with the control plane as one group rather than
 * as one scheduling entity each: a hundred busy guests do not starve the
 * agent and the server that run them.
 *
 * A QEMU joins its cgroup right after it is spawned, held at its first
 * instruction (`-S`). While it starts, its cgroup has the weight of an
 * ordinary process, so the start (QMP, `cont`) is not stuck behind the
 * guests already running; once the guest runs, the weight drops to the
 * VMI's own (systemd's `StartupCPUWeight` does the same for services).
 *
 * Both hierarchies are served: cgroup v2 (the unified tree at
 * /sys/fs/cgroup) and v1 (one tree per controller: cpu, cpuacct, memory,
 * pids). Without a writable hierarchy the agent runs guests without
 * cgroups and says so once.
 */
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KObject } from '../api/object.js';
import { at } from '../api/kinds/read.js';
import { parseQuantity } from '../api/validation/index.js';
import { vcpusOf } from '../scheduler/resources.js';

/** Which cgroup hierarchy the node has, or none usable. */
export type CgroupMode = 'v1' | 'v2' | 'none';

/** What a VMI's cgroup is set to. */
export interface VmiCgroupSpec {
  /** CPU weight in v1 `cpu.shares` units (1024 = one ordinary process), from the VMI's CPU request. */
  cpuShares: number;
  /** Hard memory cap (bytes): the VMI's memory limit plus QEMU's own overhead; none when the VMI sets no limit. */
  memoryLimitBytes?: number;
}

/** The weight of a QEMU while it starts (that of an ordinary process). */
export const startupCpuShares = 1024;

/** vCPUs per requested core for VMIs without a CPU request (KubeVirt's `cpuAllocationRatio`). */
const cpuAllocationRatio = 10;

/** What QEMU takes beside the guest's memory, added to a VMI's memory limit (KubeVirt adds its own overhead estimate to the launcher pod's limit too). */
export const qemuMemoryOverheadBytes = 256 * 2 ** 20;

/** The v1 controllers a VMI's cgroup is made in, when mounted. */
const v1Controllers = ['cpu', 'cpuacct', 'memory', 'pids'] as const;

/** The v2 controllers enabled for VMI cgroups, when the tree offers them. */
const v2Controllers = ['cpu', 'memory', 'pids'] as const;

/** How long a cgroup may stay busy after its QEMU was seen to exit (the kernel detaches exiting tasks asynchronously). */
const removeTimeoutMs = 5_000;

/**
 * The cgroup a VMI gets: its CPU request as weight (Kubernetes' conversion:
 * 1024 shares per core, at least 2), else its vCPUs divided by the
 * allocation ratio, as the scheduler reserves; its memory limit, if any,
 * plus {@link qemuMemoryOverheadBytes}.
 */
export function vmiCgroupSpec(vmi: KObject): VmiCgroupSpec {
  const resources = at(vmi, 'spec', 'domain', 'resources');
  const cores = parseQuantity(at(resources, 'requests', 'cpu')) ?? vcpusOf(vmi) / cpuAllocationRatio;
  const spec: VmiCgroupSpec = { cpuShares: Math.max(2, Math.round(cores * 1024)) };
  const limit = parseQuantity(at(resources, 'limits', 'memory'));
  if (limit !== undefined) spec.memoryLimitBytes = Math.round(limit) + qemuMemoryOverheadBytes;
  return spec;
}

/** v1 shares to v2 `cpu.weight` (Kubernetes' mapping: 2 → 1, 262144 → 10000). */
export function sharesToWeight(shares: number): number {
  return 1 + Math.floor(((Math.min(Math.max(shares, 2), 262_144) - 2) * 9_999) / 262_142);
}

/** Where the agent's VMI cgroups live. */
export interface CgroupsOptions {
  /** The cgroup filesystem root. Default `/sys/fs/cgroup`. */
  root?: string;
  /** The parent of every VMI cgroup, relative to each hierarchy's root. Default `vireo`. */
  parent?: string;
}

/** The node's VMI cgroups; see the module comment. */
export class Cgroups {
  /** Why {@link mode} is `none`; empty otherwise. */
  readonly reason: string;

  private constructor(
    readonly mode: CgroupMode,
    /** Each hierarchy's parent directory (one for v2, one per distinct v1 controller mount). */
    private readonly parents: readonly string[],
    /** v2 only: the controllers enabled for VMI cgroups. */
    private readonly enabled: ReadonlySet<string>,
    reason: string,
  ) {
    this.reason = reason;
  }

  /** Finds the node's hierarchy and prepares the parent cgroup; `none` (with the reason) when neither is usable. */
  static async detect(options: CgroupsOptions = {}): Promise<Cgroups> {
    const root = options.root ?? '/sys/fs/cgroup';
    const parent = options.parent ?? 'vireo';
    if (process.platform !== 'linux') return Cgroups.none('cgroups exist only on Linux');
    try {
      if (existsSync(join(root, 'cgroup.controllers'))) return await Cgroups.prepareV2(root, parent);
      const mounts = distinctV1Mounts(root);
      if (mounts.length > 0) {
        const parents = mounts.map((m) => join(m, parent));
        for (const dir of parents) await mkdir(dir, { recursive: true });
        return new Cgroups('v1', parents, new Set(), '');
      }
      return Cgroups.none(`no cgroup hierarchy is mounted at ${root}`);
    } catch (err) {
      return Cgroups.none(`the cgroup hierarchy at ${root} is not writable (${(err as Error).message}); run the agent as root with /sys/fs/cgroup mounted read-write`);
    }
  }

  /** cgroup v2 at `root`, whether or not it offers controllers (a hybrid host's unified tree has none). */
  static async prepareV2(root: string, parent: string): Promise<Cgroups> {
    const dir = join(root, parent);
    await mkdir(dir, { recursive: true });
    const offered = new Set(readWords(join(root, 'cgroup.controllers')));
    const wanted = v2Controllers.filter((c) => offered.has(c));
    // Controllers reach a cgroup only when every ancestor delegates them.
    if (wanted.length > 0) {
      const change = wanted.map((c) => `+${c}`).join(' ');
      await writeFile(join(root, 'cgroup.subtree_control'), change);
      await writeFile(join(dir, 'cgroup.subtree_control'), change);
    }
    return new Cgroups('v2', [dir], new Set(wanted), '');
  }

  private static none(reason: string): Cgroups {
    return new Cgroups('none', [], new Set(), reason);
  }

  /** The directories of VMI `uid`'s cgroup (one per hierarchy; none in mode `none`). */
  paths(uid: string): string[] {
    return this.parents.map((p) => join(p, uid));
  }

  /** The VMI uids that have a cgroup on the node. */
  list(): string[] {
    const uids = new Set<string>();
    for (const parent of this.parents) {
      let entries: string[];
      try {
        entries = readdirSync(parent, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
      } catch {
        continue;
      }
      for (const name of entries) uids.add(name);
    }
    return [...uids];
  }

  /** Makes VMI `uid`'s cgroup with the startup weight and `spec`'s memory cap. */
  async create(uid: string, spec: VmiCgroupSpec): Promise<void> {
    for (const dir of this.paths(uid)) await mkdir(dir, { recursive: true });
    await this.setCpuShares(uid, startupCpuShares);
    if (spec.memoryLimitBytes !== undefined) {
      if (this.mode === 'v1') await this.writeIn(uid, 'memory.limit_in_bytes', String(spec.memoryLimitBytes));
      else if (this.enabled.has('memory')) await this.writeIn(uid, 'memory.max', String(spec.memoryLimitBytes));
    }
  }

  /**
   * Moves process `pid` (all its threads) into VMI `uid`'s cgroup. A
   * process that has already exited is left to whoever waits for its exit
   * (for QEMU: its own error is the one worth reporting).
   */
  async attach(uid: string, pid: number): Promise<void> {
    for (const dir of this.paths(uid)) {
      try {
        await writeFile(join(dir, 'cgroup.procs'), String(pid));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ESRCH') return;
        throw err;
      }
    }
  }

  /** Gives a started guest its own CPU weight. */
  async settle(uid: string, spec: VmiCgroupSpec): Promise<void> {
    await this.setCpuShares(uid, spec.cpuShares);
  }

  /**
   * Removes VMI `uid`'s cgroup once its processes are gone (waiting briefly
   * for exiting ones to leave); throws when one still holds it after that.
   */
  async remove(uid: string): Promise<void> {
    for (const dir of this.paths(uid)) {
      const deadline = Date.now() + removeTimeoutMs;
      for (;;) {
        try {
          await rmdir(dir);
          break;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (code !== 'EBUSY' || Date.now() >= deadline) {
            throw new Error(`cannot remove the cgroup ${dir}: ${(err as Error).message} (processes still in it: ${readWords(join(dir, 'cgroup.procs')).join(', ') || 'none'})`, { cause: err });
          }
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    }
  }

  private async setCpuShares(uid: string, shares: number): Promise<void> {
    if (this.mode === 'v1') await this.writeIn(uid, 'cpu.shares', String(shares));
    else if (this.enabled.has('cpu')) await this.writeIn(uid, 'cpu.weight', String(sharesToWeight(shares)));
  }

  /** Writes `file` in whichever of the VMI's cgroup directories has it (v1: the controller's own tree). */
  private async writeIn(uid: string, file: string, value: string): Promise<void> {
    for (const dir of this.paths(uid)) {
      const path = join(dir, file);
      if (existsSync(path)) await writeFile(path, value);
    }
  }
}

/** The mounted v1 controller trees of {@link v1Controllers}, each once (cpu and cpuacct are often one mount). */
function distinctV1Mounts(root: string): string[] {
  const seen = new Set<string>();
  const mounts: string[] = [];
  for (const controller of v1Controllers) {
    const dir = join(root, controller);
    if (!existsSync(join(dir, 'cgroup.procs'))) continue;
    const real = realpathSync(dir);
    if (seen.has(real)) continue;
    seen.add(real);
    mounts.push(dir);
  }
  return mounts;
}

function readWords(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split(/\s+/).filter((w) => w !== '');
  } catch {
    return [];
  }
}
