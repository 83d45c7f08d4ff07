/**
 * The TLS credentials of one migration, as KubeVirt secures migrations by
 * default (`spec.configuration.migrations.disableTLS: false`): the
 * controller issues, from the cluster CA, a serving certificate for the
 * target QEMU naming the target node's address, and a client certificate
 * for the source QEMU; each agent loads its own and verifies the other's
 * against the CA. Issued per command, never stored in an object. Without
 * a CA to issue from, a migration that wants TLS fails saying so: never
 * plain TCP behind the user's back.
 */
import type { MigrationTls } from '../../agent/index.js';
import type { MigrationConfiguration } from '../../api/kinds/migration-config.js';
import type { CertificateIssuer } from '../../net/certificate-issuer.js';

/** Which QEMU the credentials are for: the target serves on `address`, the source connects. */
export type MigrationRole = { side: 'target'; address: string } | { side: 'source' };

/**
 * The credentials of migration `migrationUid` for `role`, or undefined when
 * the settings disable TLS. Throws when TLS is wanted and nothing can issue.
 */
export async function migrationCredentials(issuer: CertificateIssuer | undefined, config: MigrationConfiguration, options: { migrationUid: string; role: MigrationRole }): Promise<MigrationTls | undefined> {
  if (config.disableTLS) return undefined;
  if (issuer === undefined) {
    throw new Error('migration over TLS needs certificates from the cluster CA, and this server has no CA key to issue them (it runs without ca.key in its --data-dir or --pki-dir): give it the cluster\'s ca.key, or set spec.configuration.migrations.disableTLS: true in the KubeVirt CR to migrate over plain TCP');
  }
  const { role, migrationUid } = options;
  const issued = await issuer.issue(role.side === 'target'
    ? { commonName: `migration-target-${migrationUid}`, usage: 'server', hosts: [role.address] }
    : { commonName: `migration-source-${migrationUid}`, usage: 'client' });
  return { caCert: issued.caCert, cert: issued.cert, key: issued.key };
}
