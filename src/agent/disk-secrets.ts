/**
 * Keys of encrypted volumes on their way into QEMU, as libvirt does it:
 * each VMI has a random 32-byte master key in its private (0700)
 * directory, handed to QEMU as a `secret` object read from that file; each
 * volume's key travels only sealed with it (AES-256-CBC, a fresh IV per
 * seal) as a `secret` object with `keyid`/`iv`, on the command line or in
 * a QMP `object-add` for a hotplugged disk. So no volume key is ever
 * written to disk or visible in `/proc/<pid>/cmdline` in the clear, and a
 * restarted agent can still seal keys for hotplugs from the kept master key.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SealedSecret } from './qemu/index.js';

const masterKeyBytes = 32;

/** Where a VMI's master key lives. */
export function masterKeyPath(vmiDir: string): string {
  return join(vmiDir, 'master-key.aes');
}

/** The VMI's master key, made (0600, exclusive create) on first use. */
export async function ensureMasterKey(path: string): Promise<Buffer> {
  try {
    const existing = await readFile(path);
    if (existing.length === masterKeyBytes) return existing;
    throw new Error(`the master key ${path} is ${existing.length} bytes long, not ${masterKeyBytes}: the VMI's directory was tampered with`);
  } catch (err) {
    if (!(err instanceof Error && 'code' in err && err.code === 'ENOENT')) throw err;
  }
  const key = randomBytes(masterKeyBytes);
  await writeFile(path, key, { mode: 0o600, flag: 'wx' });
  return key;
}

/** `secret` sealed under `masterKey` the way QEMU's `secret` object unseals it (AES-256-CBC, PKCS#7 padding). */
export function sealSecret(masterKey: Buffer, secret: Buffer): SealedSecret {
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-cbc', masterKey, iv);
  const data = Buffer.concat([cipher.update(secret), cipher.final()]);
  return { data: data.toString('base64'), iv: iv.toString('base64') };
}
