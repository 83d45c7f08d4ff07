/**
 * TLS that trusts exactly one self-signed certificate, whatever name the
 * peer is reached by: how the API server reaches node agents, and how one
 * agent reaches another for a volume copy. Trust comes from where the
 * certificate was published (the agent's Node), not from a CA or a name.
 */
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';

/** Options for `https.request` / `tls.connect` that accept only `certificate`. */
export interface PinnedTls {
  ca: string;
  checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined;
}

/** TLS options that trust exactly `certificate` (PEM). */
export function pinnedTls(certificate: string): PinnedTls {
  const expected = new X509Certificate(certificate).fingerprint256;
  return {
    ca: certificate,
    checkServerIdentity: (_host, cert) =>
      cert.fingerprint256 === expected ? undefined : new Error(`the agent presented certificate ${cert.fingerprint256}, not the pinned ${expected} from its Node`),
  };
}
