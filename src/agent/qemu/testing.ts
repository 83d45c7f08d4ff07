/**
 * Fixtures for the command-line tests: the golden cases under `testdata/`
 * (found from the repository root, so compiled tests in any `dist*` folder
 * read the sources' files) and the node facts and paths they run with.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KObject } from '../../api/object.js';
import { SpecNode } from './spec-reader.js';
import type { DiskSource, NodeFacts, VmiPaths } from './types.js';

/** The folder holding `package.json`, walking up from this module. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

export const testdataDir = join(repoRoot(), 'src', 'agent', 'qemu', 'testdata');

/** Debian's OVMF builds, as the agent would find them. */
export const debianFacts: NodeFacts = {
  accel: 'tcg',
  qemuBinary: '/usr/bin/qemu-system-x86_64',
  ovmfCode: '/usr/share/OVMF/OVMF_CODE_4M.fd',
  ovmfVars: '/usr/share/OVMF/OVMF_VARS_4M.fd',
  ovmfSecureBootCode: '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd',
  ovmfSecureBootVars: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd',
  hostCpus: 8,
};

/** Per-case overrides in `<case>.node.json`. */
interface NodeOverrides {
  facts?: Partial<Omit<NodeFacts, 'now'>> & { now?: string };
  disks?: Record<string, Partial<DiskSource>>;
}

export interface GoldenCase {
  name: string;
  vmi: KObject;
  facts: NodeFacts;
  /** Disk source overrides of the case (block devices, direct I/O…). */
  diskOverrides: Record<string, Partial<DiskSource>>;
}

function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

function isKObject(value: unknown): value is KObject {
  return typeof value === 'object' && value !== null && 'metadata' in value && 'spec' in value;
}

/** Every `<case>.vmi.json` in `testdata/`, sorted by name. */
export function goldenCases(): GoldenCase[] {
  return readdirSync(testdataDir)
    .filter((file) => file.endsWith('.vmi.json'))
    .sort()
    .map((file) => {
      const name = file.slice(0, -'.vmi.json'.length);
      const vmi = readJson(join(testdataDir, file));
      if (!isKObject(vmi)) throw new Error(`${file} is not a VMI`);
      const nodeFile = join(testdataDir, `${name}.node.json`);
      const overrides = (existsSync(nodeFile) ? readJson(nodeFile) : {}) as NodeOverrides;
      const { now, ...factOverrides } = overrides.facts ?? {};
      const facts: NodeFacts = { ...debianFacts, ...factOverrides };
      if (now !== undefined) facts.now = new Date(now);
      return { name, vmi, facts, diskOverrides: overrides.disks ?? {} };
    });
}

const isoVolumes = new Set(['cloudInitNoCloud', 'cloudInitConfigDrive', 'configMap', 'secret', 'serviceAccount', 'downwardAPI']);

/** What the agent would prepare for each volume of `vmi`, under `dir`. */
export function preparedDisks(vmi: KObject, dir: string): Record<string, DiskSource> {
  const disks: Record<string, DiskSource> = {};
  for (const volume of new SpecNode(vmi.spec, 'spec').get('volumes').items()) {
    const name = volume.get('name').string();
    if (name === undefined) continue;
    const type = volume.keys().find((key) => key !== 'name') ?? '';
    if (type === 'containerDisk' || type === 'emptyDisk') {
      disks[name] = { name, file: join(dir, 'disks', `${name}.qcow2`), format: 'qcow2', directIo: true };
    } else if (isoVolumes.has(type)) {
      disks[name] = { name, file: join(dir, 'disks', `${name}.iso`), format: 'raw', readOnly: type !== 'cloudInitNoCloud' && type !== 'cloudInitConfigDrive' };
    } else {
      disks[name] = { name, file: join(dir, 'disks', `${name}.img`), format: 'raw' };
    }
  }
  return disks;
}

/** The paths of a VMI whose files live in `dir`. */
export function vmiPaths(vmi: KObject, dir: string, options: { efi: boolean; kernelBoot: boolean }): VmiPaths {
  const paths: VmiPaths = {
    dir,
    qmpSocket: join(dir, 'qmp.sock'),
    serialSocket: join(dir, 'serial.sock'),
    vncSocket: join(dir, 'vnc.sock'),
    guestAgentSocket: join(dir, 'qga.sock'),
    pidFile: join(dir, 'qemu.pid'),
    serialLog: join(dir, 'serial.log'),
    disks: preparedDisks(vmi, dir),
  };
  if (options.efi) paths.efiVars = join(dir, 'efi-vars.fd');
  if (options.kernelBoot) {
    paths.kernel = join(dir, 'kernel');
    paths.initrd = join(dir, 'initrd');
  }
  return paths;
}
