/**
 * The node's image store: where the agent finds the files of a
 * `containerDisk` (a disk image) and of a `kernelBoot` container (a kernel
 * and an initrd), by image reference.
 *
 * Layout under the root:
 *
 * ```
 * blobs/<id>/disk.qcow2 | disk.raw, kernel, initrd   read-only, never changed
 * refs/<registry>/<repository>/:<tag>                symlink to blobs/<id>
 * refs/<registry>/<repository>/@sha256:<hex>         symlink to blobs/<id>
 * tmp/                                               imports in progress
 * ```
 *
 * An image has a disk, a kernel, or both (a kernelBoot container image
 * need not have a disk). A blob's id is a hash of its content, so importing the same files twice
 * stores them once, and re-tagging never changes a file: a running VMI's
 * qcow2 overlay keeps its backing file even when the tag moves on. Tags
 * start with ":" and digests with "@", characters no repository path
 * component has, so `a/b:c` and `a/b/c:d` never collide.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, open, readdir, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve as resolvePath } from 'node:path';
import { parseImageReference } from './reference.js';

/** The files of an image in the store: absolute paths of read-only files. */
export interface ContainerDiskImage {
  /** The normalised reference, e.g. `localhost/vireo/tiny:latest`. */
  image: string;
  /** The disk image; put a qcow2 overlay on it, never write to it. Absent for a kernel-only image. */
  disk?: string;
  /** The disk's format, from its header: `qcow2`, or `raw` for anything else (raw, ISO); set with `disk`. */
  diskFormat?: 'qcow2' | 'raw';
  /** A kernel for `firmware.kernelBoot`, when the image has one. */
  kernel?: string;
  /** An initrd for `firmware.kernelBoot`, when the image has one. */
  initrd?: string;
}

/** Source files for {@link ImageStore.importFiles}: a disk, a kernel, or both. */
export interface ImageFiles {
  disk?: string;
  kernel?: string;
  initrd?: string;
}

type Role = 'disk' | 'kernel' | 'initrd';

const qcow2Magic = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

/** The node's image store; see the module comment for its layout. */
export class ImageStore {
  /** The store's root directory (absolute). */
  readonly root: string;

  constructor(root: string) {
    this.root = resolvePath(root);
  }

  /**
   * The files of `image`, or undefined when the store does not have it.
   * Throws an ApiError (`BadRequest`) when `image` is not a valid reference.
   */
  async resolve(image: string): Promise<ContainerDiskImage | undefined> {
    const ref = parseImageReference(image);
    const blob = await this.blobOf(ref.normalized);
    return blob === undefined ? undefined : readBlob(ref.normalized, blob);
  }

  /**
   * Points `image` at the blob `target` (another reference in the store)
   * points at, as a pull tags what it fetched by digest; returns the files,
   * or undefined when the store does not have `target`.
   */
  async alias(image: string, target: string): Promise<ContainerDiskImage | undefined> {
    const ref = parseImageReference(image);
    const blob = await this.blobOf(parseImageReference(target).normalized);
    if (blob === undefined) return undefined;
    await pointRef(refPath(this.root, ref.normalized), blob);
    return readBlob(ref.normalized, blob);
  }

  /** The blob directory a normalised reference points at, or undefined. */
  private async blobOf(normalized: string): Promise<string | undefined> {
    const link = refPath(this.root, normalized);
    let target: string;
    try {
      target = await readlink(link);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const blob = isAbsolute(target) ? target : resolvePath(dirname(link), target);
    return dirname(blob) === join(this.root, 'blobs') ? blob : undefined;
  }

  /**
   * Copies `files` into the store as `image` and returns where they are.
   * The image appears whole or not at all: files are copied into a
   * temporary directory, which becomes the blob by rename, and the tag is a
   * symlink replaced by rename. An image already there under that
   * reference is replaced; its blob stays for the VMIs that use it.
   */
  async importFiles(image: string, files: ImageFiles): Promise<ContainerDiskImage> {
    const ref = parseImageReference(image);
    const sources: [Role, string][] = [];
    if (files.disk !== undefined) sources.push(['disk', files.disk]);
    if (files.kernel !== undefined) sources.push(['kernel', files.kernel]);
    if (files.initrd !== undefined) sources.push(['initrd', files.initrd]);
    if (sources.length === 0) throw new Error(`image store: cannot import ${ref.normalized}: it has neither a disk nor a kernel`);
    for (const [role, path] of sources) await assertRegularFile(role, path);

    const tmpRoot = join(this.root, 'tmp');
    await mkdir(tmpRoot, { recursive: true });
    await mkdir(join(this.root, 'blobs'), { recursive: true });
    const staging = await mkdtemp(join(tmpRoot, 'import-'));
    try {
      const manifest: string[] = [];
      for (const [role, source] of sources) {
        const name = role === 'disk' ? `disk.${await diskFormat(source)}` : role;
        const digest = await copyHashing(source, join(staging, name));
        await chmod(join(staging, name), 0o444);
        manifest.push(`${name} ${digest}`);
      }
      const id = createHash('sha256').update(manifest.join('\n')).digest('hex');
      const blob = join(this.root, 'blobs', id);
      if (!(await exists(blob))) {
        await chmod(staging, 0o755);
        try {
          await rename(staging, blob);
        } catch (err) {
          // Another import of the same content won the race; its blob is as good.
          if (!isCode(err, 'ENOTEMPTY') && !isCode(err, 'EEXIST')) throw err;
        }
      }
      await pointRef(refPath(this.root, ref.normalized), blob);
      const stored = await readBlob(ref.normalized, blob);
      if (stored === undefined) throw new Error(`image store: blob ${blob} has no files after import`);
      return stored;
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** The normalised references of every image in the store, sorted. */
  async list(): Promise<string[]> {
    const refs = join(this.root, 'refs');
    const found: string[] = [];
    const walk = async (dir: string, name: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      for (const entry of entries) {
        if (entry.isDirectory()) await walk(join(dir, entry.name), name === '' ? entry.name : `${name}/${entry.name}`);
        else if (entry.isSymbolicLink() && (entry.name.startsWith(':') || entry.name.startsWith('@'))) found.push(`${name}${entry.name}`);
      }
    };
    await walk(refs, '');
    return found.sort();
  }

}

/** Where the symlink of a normalised reference lives. */
function refPath(root: string, normalized: string): string {
  const at = normalized.indexOf('@');
  const split = at >= 0 ? at : normalized.lastIndexOf(':');
  return join(root, 'refs', normalized.slice(0, split), normalized.slice(split));
}

/**
 * Makes `link` point at `blob` (relatively, so the store can move),
 * replacing what it pointed at in one rename.
 */
async function pointRef(link: string, blob: string): Promise<void> {
  await mkdir(dirname(link), { recursive: true });
  const temp = join(dirname(link), `.${basename(link)}.${randomBytes(6).toString('hex')}`);
  await symlink(relative(dirname(link), blob), temp);
  try {
    await rename(temp, link);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

async function readBlob(image: string, blob: string): Promise<ContainerDiskImage | undefined> {
  let names: string[];
  try {
    names = await readdir(blob);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  const disk = names.find((n) => n === 'disk.qcow2' || n === 'disk.raw');
  const out: ContainerDiskImage = { image };
  if (disk !== undefined) {
    out.disk = join(blob, disk);
    out.diskFormat = disk === 'disk.qcow2' ? 'qcow2' : 'raw';
  }
  if (names.includes('kernel')) out.kernel = join(blob, 'kernel');
  if (names.includes('initrd')) out.initrd = join(blob, 'initrd');
  return out.disk === undefined && out.kernel === undefined ? undefined : out;
}

async function assertRegularFile(role: Role, path: string): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new Error(`image store: cannot import the ${role} ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (!info.isFile()) throw new Error(`image store: cannot import the ${role} ${path}: not a regular file`);
}

async function diskFormat(path: string): Promise<'qcow2' | 'raw'> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return bytesRead === 4 && head.equals(qcow2Magic) ? 'qcow2' : 'raw';
  } finally {
    await handle.close();
  }
}

const chunkSize = 256 * 1024;
const zeros = Buffer.alloc(chunkSize);

/**
 * Copies `from` to `to` (a new file) and returns the sha256 of its bytes.
 * Runs of zeros stay holes, so a sparse raw disk stays sparse.
 */
async function copyHashing(from: string, to: string): Promise<string> {
  const hash = createHash('sha256');
  const source = await open(from, 'r');
  try {
    const target = await open(to, 'wx', 0o644);
    try {
      const buffer = Buffer.alloc(chunkSize);
      let position = 0;
      for (;;) {
        const { bytesRead } = await source.read(buffer, 0, chunkSize, position);
        if (bytesRead === 0) break;
        const chunk = buffer.subarray(0, bytesRead);
        hash.update(chunk);
        if (!chunk.equals(zeros.subarray(0, bytesRead))) await writeAll(target, chunk, position);
        position += bytesRead;
      }
      await target.truncate(position);
      // On disk before the blob's rename makes it visible: a blob is never re-copied.
      await target.datasync();
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
  return hash.digest('hex');
}

async function writeAll(file: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await file.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

function isCode(err: unknown, code: string): boolean {
  return err instanceof Error && 'code' in err && err.code === code;
}

function isNotFound(err: unknown): boolean {
  return isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR');
}
