/**
 * The server's certificates: a CA and a serving certificate signed by it,
 * made with the system's `openssl` on first start and reused afterwards;
 * and the self-signed certificate of a `vireo agent` endpoint.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { openssl } from '../net/certificate-issuer.js';

export interface Pki {
  caCert: string;
  serverCert: string;
  serverKey: string;
}

/**
 * Returns the PKI in `dir`, creating whatever is missing. `hosts` go into
 * the serving cert's SANs. With `caDir` (several servers of one cluster
 * share one CA), the CA is read from there and must exist; the serving
 * certificate, this server's own, is still made in `dir`.
 */
export async function ensurePki(dir: string, hosts: string[], options: { caDir?: string } = {}): Promise<Pki> {
  const caKey = join(options.caDir ?? dir, 'ca.key');
  const caCrt = join(options.caDir ?? dir, 'ca.crt');
  if (options.caDir !== undefined && (!existsSync(caKey) || !existsSync(caCrt))) {
    throw new Error(`${options.caDir} has no ca.crt and ca.key: --pki-dir names a copy of the first server's ca.crt, ca.key, token and upload-token.key (from its --data-dir)`);
  }
  const key = join(dir, 'server.key');
  const crt = join(dir, 'server.crt');
  if (!existsSync(caKey) || !existsSync(caCrt)) {
    // Marked a CA: GnuTLS (QEMU's migration TLS) refuses an issuer without the basic constraint.
    await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', caKey, '-out', caCrt, '-days', '3650', '-subj', '/CN=vireo-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  }
  const sans = new Set(['DNS:localhost', 'IP:127.0.0.1', 'IP:::1', 'DNS:vireo']);
  for (const h of hosts) if (h !== '' && h !== '0.0.0.0' && h !== '::') sans.add(isIP(h) === 0 ? `DNS:${h}` : `IP:${h}`);
  const sanLine = [...sans].sort().join(',');
  const sanFile = join(dir, 'server.san');
  const wanted = `subjectAltName=${sanLine}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`;
  // The CA the serving certificate was signed by counts too: a server moved onto a shared CA gets a new one.
  const wantedWithCa = `${wanted}# ca ${createHash('sha256').update(readFileSync(caCrt)).digest('hex')}\n`;
  const current = existsSync(sanFile) ? readFileSync(sanFile, 'utf8') : '';
  if (!existsSync(key) || !existsSync(crt) || (current !== wanted && current !== wantedWithCa) || (options.caDir !== undefined && current !== wantedWithCa)) {
    writeFileSync(sanFile, options.caDir === undefined ? wanted : wantedWithCa, { mode: 0o600 });
    const csr = join(dir, 'server.csr');
    await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=vireo-apiserver']);
    await openssl(['x509', '-req', '-in', csr, '-CA', caCrt, '-CAkey', caKey, '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', '825', '-out', crt, '-extfile', sanFile]);
  }
  return { caCert: readFileSync(caCrt, 'utf8'), serverCert: readFileSync(crt, 'utf8'), serverKey: readFileSync(key, 'utf8') };
}

/** A certificate and its key, PEM. */
export interface CertificatePair {
  cert: string;
  key: string;
}

/**
 * Returns the self-signed certificate `<dir>/<name>.crt` and its key
 * (mode 0600), making them on first use. No CA signs it: the peer pins it
 * (the API server reads it from the agent's Node), so `cn` only names it.
 */
export async function ensureSelfSigned(dir: string, name: string, cn: string): Promise<CertificatePair> {
  const key = join(dir, `${name}.key`);
  const crt = join(dir, `${name}.crt`);
  if (!existsSync(key) || !existsSync(crt)) {
    const extensions = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', `subjectAltName=DNS:${cn}`];
    await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', crt, '-days', '3650', '-subj', `/CN=${cn}`, ...extensions.flatMap((e) => ['-addext', e])]);
  }
  chmodSync(key, 0o600);
  return { cert: readFileSync(crt, 'utf8'), key: readFileSync(key, 'utf8') };
}
