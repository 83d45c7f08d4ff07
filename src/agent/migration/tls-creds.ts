/**
 * A migration's TLS credentials in one QEMU: the certificate and key the
 * controller issued for this migration are written into the VMI's
 * directory in QEMU's x509 layout (`ca-cert.pem`, `server-cert.pem` and
 * `server-key.pem`, or `client-cert.pem` and `client-key.pem`; keys 0600),
 * loaded as a `tls-creds-x509` object (verify-peer: each side checks the
 * other's certificate against the cluster CA), and removed from disk as
 * soon as QEMU has read them (it reads them when the object is made). The
 * object goes with the migration.
 *
 * A serving QEMU also gets `dh-params.pem`, RFC 7919's ffdhe2048 group (as
 * openssl names it): without that file QEMU generates Diffie-Hellman
 * parameters when it loads the object, 100–900 ms on the target's critical
 * path.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openssl } from '../../net/certificate-issuer.js';
import type { Machine } from '../machine.js';
import type { MigrationTls } from './protocol.js';

/** Which end of the TLS connections a QEMU is: the target serves, the source connects. */
export type TlsEndpoint = 'server' | 'client';

/** The directory the credentials of migration `migrationUid` are written to, under the VMI's directory. */
export function credentialsDir(vmiDir: string, migrationUid: string): string {
  return join(vmiDir, `migration-tls-${migrationUid}`);
}

/** The QEMU object id of migration `migrationUid`'s credentials. */
export function credentialsId(migrationUid: string): string {
  return `migration-tls-${migrationUid}`;
}

let dhParameters: Promise<string> | undefined;

/** The ffdhe2048 group in PKCS#3 PEM, from openssl once per process (a standard group: nothing is generated). */
export function ffdhe2048(): Promise<string> {
  dhParameters ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vireo-dh-'));
    try {
      await openssl(['genpkey', '-genparam', '-algorithm', 'DH', '-pkeyopt', 'group:ffdhe2048', '-out', join(dir, 'dh-params.pem')]);
      return await readFile(join(dir, 'dh-params.pem'), 'utf8');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  // A failure is not kept: the next migration tries again.
  dhParameters.catch(() => { dhParameters = undefined; });
  return dhParameters;
}

/** Writes `tls` into `dir` in QEMU's layout for `endpoint`; returns the files written. */
export async function writeCredentials(dir: string, endpoint: TlsEndpoint, tls: MigrationTls): Promise<string[]> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const files: [string, string, number][] = [
    ['ca-cert.pem', tls.caCert, 0o644],
    [`${endpoint}-cert.pem`, tls.cert, 0o644],
    [`${endpoint}-key.pem`, tls.key, 0o600],
  ];
  if (endpoint === 'server') files.push(['dh-params.pem', await ffdhe2048(), 0o644]);
  for (const [name, text, mode] of files) await writeFile(join(dir, name), text, { mode });
  return files.map(([name]) => join(dir, name));
}

/**
 * Loads `tls` into `machine` as the `tls-creds-x509` object of migration
 * `migrationUid` and returns its id. The files exist only while QEMU reads
 * them. A repeated call (the object is already there) is a no-op.
 */
export async function loadCredentials(machine: Machine, migrationUid: string, endpoint: TlsEndpoint, tls: MigrationTls): Promise<string> {
  const id = credentialsId(migrationUid);
  const dir = credentialsDir(machine.layout.dir, migrationUid);
  // Credentials a given-up attempt left: made again from this command's.
  await machine.execute('object-del', { id }).catch(() => undefined);
  try {
    await writeCredentials(dir, endpoint, tls);
    await machine.execute('object-add', { 'qom-type': 'tls-creds-x509', id, dir, endpoint, 'verify-peer': true });
  } catch (err) {
    throw new Error(`cannot load the migration's TLS credentials into QEMU: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return id;
}

/** Removes migration `migrationUid`'s credentials from `machine` (nothing when they are not there). */
export async function unloadCredentials(machine: Machine, migrationUid: string): Promise<void> {
  await machine.execute('object-del', { id: credentialsId(migrationUid) }).catch(() => undefined);
}
