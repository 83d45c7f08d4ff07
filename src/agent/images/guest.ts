/**
 * Vireo's tiny test guest (see `guest/` and `scripts/build-guest`): built
 * once per machine from Debian packages into a cache directory, and
 * imported into a node's image store as `localhost/vireo/tiny:latest`.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ContainerDiskImage, ImageStore } from './store.js';

/** The image reference the test guest is imported as. */
export const TEST_GUEST_IMAGE = 'localhost/vireo/tiny:latest';

/** The line the guest prints on ttyS0 when it is fully up (followed by `hostname=… uptime=…s`). */
export const TEST_GUEST_READY_MARKER = 'vireo-guest: ready';

/** The built test guest: absolute paths in the cache directory. */
export interface TestGuest {
  /** The BIOS- and UEFI-bootable disk (qcow2); put an overlay on it, never write to it. */
  disk: string;
  /**
   * The kernel for `-kernel`: an uncompressed ELF that QEMU starts at its
   * PVH entry, 3 s faster under TCG than `vmlinuz`. BIOS (SeaBIOS) only:
   * under OVMF use `vmlinuz`.
   */
  kernel: string;
  /** The same kernel as Debian ships it (bzImage, self-decompressing; boots under BIOS and UEFI). */
  vmlinuz: string;
  initrd: string;
  /** The kernel command line the disk boots with; pass it with `-append` for a kernel boot. */
  kernelArgs: string;
  /** The guest's QEMU guest agent binary (Debian's qemu-ga), which also runs on a Debian host, for tests of the agent's client. */
  guestAgent: string;
  /** The cache directory holding all of the above. */
  dir: string;
}

export interface EnsureTestGuestOptions {
  /** Where the guest is built and cached; default `${XDG_CACHE_HOME:-~/.cache}/vireo/guest`. */
  cacheDir?: string;
  signal?: AbortSignal;
  /** Each line the build prints (progress, then a summary). */
  onProgress?: (line: string) => void;
}

/** The default cache directory of the test guest. */
export function defaultGuestCacheDir(): string {
  const cache = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  return join(cache, 'vireo', 'guest');
}

/** The repository root: the nearest directory above this module with a package.json. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'scripts', 'build-guest'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the Vireo repository (package.json and scripts/build-guest) above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

const inFlight = new Map<string, Promise<TestGuest>>();

/**
 * Builds the test guest unless the cache already holds a build of the same
 * inputs (Debian package versions and `guest/`), and returns its files.
 * The first build downloads about 70 MB of packages and takes a minute;
 * later calls take a fraction of a second. Concurrent callers (in this
 * process or others) share one build.
 */
export async function ensureTestGuest(options: EnsureTestGuestOptions = {}): Promise<TestGuest> {
  const dir = resolve(options.cacheDir ?? defaultGuestCacheDir());
  const running = inFlight.get(dir);
  if (running !== undefined) return running;
  const build = runBuild(dir, options).finally(() => inFlight.delete(dir));
  inFlight.set(dir, build);
  return build;
}

/** Builds the test guest if needed and imports it into `store` as {@link TEST_GUEST_IMAGE}. */
export async function importTestGuest(store: ImageStore, options: EnsureTestGuestOptions = {}): Promise<ContainerDiskImage> {
  const guest = await ensureTestGuest(options);
  return store.importFiles(TEST_GUEST_IMAGE, { disk: guest.disk, kernel: guest.kernel, initrd: guest.initrd });
}

/**
 * Set by `scripts/run-tests.mjs` to the cache directory it has just brought
 * up to date with `scripts/build-guest`: test processes then skip the
 * script's check of the Debian package versions (seconds, in each of ~40
 * test files) and take the files as they are.
 */
export const GUEST_CHECKED_ENV = 'VIREO_GUEST_CHECKED';

async function runBuild(dir: string, options: EnsureTestGuestOptions): Promise<TestGuest> {
  options.signal?.throwIfAborted();
  if (process.env[GUEST_CHECKED_ENV] === dir && existsSync(join(dir, 'cmdline'))) return guestIn(dir);
  const script = join(repoRoot(), 'scripts', 'build-guest');
  // Its own process group, so an abort stops apt-get and dpkg-deb too.
  const child = spawn('bash', [script, '--out', dir], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const tail: string[] = [];
  const onLine = (line: string): void => {
    tail.push(line);
    if (tail.length > 30) tail.shift();
    options.onProgress?.(line);
  };
  createInterface({ input: child.stdout }).on('line', onLine);
  createInterface({ input: child.stderr }).on('line', onLine);
  const onAbort = (): void => {
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    }
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const status = await new Promise<number | string>((resolveExit, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => { resolveExit(code ?? signal ?? 'unknown'); });
    });
    options.signal?.throwIfAborted();
    if (status !== 0) {
      throw new Error(`scripts/build-guest failed (${String(status)}):\n${tail.join('\n')}`);
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  return guestIn(dir);
}

/** The built guest's files in `dir`. */
async function guestIn(dir: string): Promise<TestGuest> {
  const kernelArgs = (await readFile(join(dir, 'cmdline'), 'utf8')).trim();
  return {
    disk: join(dir, 'disk.qcow2'),
    kernel: join(dir, 'vmlinux'),
    vmlinuz: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.img'),
    kernelArgs,
    guestAgent: join(dir, 'qemu-ga'),
    dir,
  };
}
