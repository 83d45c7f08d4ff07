/**
 * Short-lived leaf certificates signed by the cluster CA, made with the
 * system's `openssl`: what the migration controller hands the two QEMUs of
 * a live migration so each verifies the other (the target's serving
 * certificate names its node address; the source's is a client
 * certificate). The keys are made fresh for each certificate and never
 * written anywhere but a private scratch directory that goes at once.
 */
import { execFile } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A certificate and its key, PEM, with the CA certificate that signed it. */
export interface IssuedCertificate {
  caCert: string;
  cert: string;
  key: string;
}

/** What to issue: a TLS server named by `hosts` (IP addresses or DNS names), or a TLS client. */
export interface CertificateRequest {
  commonName: string;
  usage: 'server' | 'client';
  hosts?: readonly string[];
  /** How long it is valid; default 1 day (a migration is long over by then). */
  days?: number;
}

/** Issues certificates; see the module comment. */
export interface CertificateIssuer {
  issue(request: CertificateRequest): Promise<IssuedCertificate>;
}

/** Issues with the CA in `caCertFile` and `caKeyFile` (the server's `ca.crt` and `ca.key`). */
export class OpenSslIssuer implements CertificateIssuer {
  constructor(private readonly ca: { certFile: string; keyFile: string }) {}

  async issue(request: CertificateRequest): Promise<IssuedCertificate> {
    if (!/^[\w.:-]{1,64}$/.test(request.commonName)) throw new Error(`cannot issue a certificate for ${JSON.stringify(request.commonName)}: a common name is letters, digits, '.', ':', '_' or '-'`);
    const extensionLines = extensionsOf(request);
    const caCert = await readFile(this.ca.certFile, 'utf8').catch((err: unknown) => {
      throw new Error(`cannot read the cluster CA ${this.ca.certFile}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
    if (!new X509Certificate(caCert).ca) {
      throw new Error(`the cluster CA ${this.ca.certFile} is not marked as a CA (no basicConstraints CA:TRUE; made by an older Vireo), and QEMU's TLS refuses certificates it signed: set spec.configuration.migrations.disableTLS: true in the KubeVirt CR, or give the cluster a new CA`);
    }
    const scratch = await mkdtemp(join(tmpdir(), 'vireo-issue-'));
    try {
      const key = join(scratch, 'leaf.key');
      const csr = join(scratch, 'leaf.csr');
      const crt = join(scratch, 'leaf.crt');
      const extensions = join(scratch, 'leaf.ext');
      await writeFile(extensions, extensionLines, { mode: 0o600 });
      await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${request.commonName}`]);
      await openssl(['x509', '-req', '-in', csr, '-CA', this.ca.certFile, '-CAkey', this.ca.keyFile, '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', String(request.days ?? 1), '-out', crt, '-extfile', extensions]);
      return { caCert, cert: await readFile(crt, 'utf8'), key: await readFile(key, 'utf8') };
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
}

/** The X.509 v3 extensions of a leaf for `request`. */
export function extensionsOf(request: CertificateRequest): string {
  const lines = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', `extendedKeyUsage=${request.usage === 'server' ? 'serverAuth' : 'clientAuth'}`];
  const hosts = request.hosts ?? [];
  for (const h of hosts) if (!/^[\w.:-]{1,253}$/.test(h)) throw new Error(`cannot issue a certificate for host ${JSON.stringify(h)}: not an IP address or DNS name`);
  if (request.usage === 'server' && hosts.length === 0) throw new Error('a server certificate names at least one host');
  if (hosts.length > 0) lines.push(`subjectAltName=${hosts.map((h) => (isIP(h) === 0 ? `DNS:${h}` : `IP:${h}`)).join(',')}`);
  return `${lines.join('\n')}\n`;
}

/** Runs the system's `openssl` with `args`, without any config file; throws with its stderr. */
export async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args, { env: { ...process.env, OPENSSL_CONF: '/dev/null', RANDFILE: '/dev/null' } });
  } catch (err) {
    const e = err as { stderr?: string; code?: string };
    if (e.code === 'ENOENT') throw new Error('openssl is not installed: run scripts/setup (or apt-get install openssl)', { cause: err });
    throw new Error(`openssl ${args[0] ?? ''} failed: ${e.stderr ?? String(err)}`, { cause: err });
  }
}
