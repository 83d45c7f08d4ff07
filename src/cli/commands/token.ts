/**
 * `vireo token create|list|delete`: join tokens (kubeadm's `kubeadm token`),
 * made and kept as kube-system Secrets of type `bootstrap.kubernetes.io/token`
 * through the API, with the kubeconfig like the other commands. `create`
 * prints the token, then the `vireo agent` command line that joins a host,
 * with the CA pin (`--ca-cert-hash`). `create --metrics` makes a scraper's
 * read-only metrics token instead (`src/api/metrics-token.ts`), which
 * `list` shows and `delete` revokes too.
 */
import { parseArgs } from 'node:util';
import { ApiError } from '../../api/errors.js';
import { parseGoDuration } from '../../api/duration.js';
import {
  caCertHash, defaultJoinTokenTtlSeconds, joinTokenExpired, joinTokenNamespace, joinTokenOfSecret, joinTokenSecret, joinTokenSecretName, newJoinToken, parseJoinToken,
} from '../../api/join-token.js';
import { resources } from '../../client/index.js';
import { metricsTokenIdOf, metricsTokenOfSecret, metricsTokenSecretName } from '../../api/metrics-token.js';
import { CliError } from '../errors.js';
import { createMetricsToken } from './metrics-token.js';
import { clientFor, connectionFor } from './connection.js';

export const tokenUsage = `  token create [--ttl DURATION] [--description TEXT]
                         Make a join token (default TTL 24h; 0 never expires) and print it
                         with the vireo agent command that joins a host with it.
  token create --metrics [--description TEXT]
                         Make a scraper's read-only token: it reads /metrics on the servers and
                         agents and nothing else (see vireo metrics scrape-config).
  token list             The join and metrics tokens, their expiry and description.
  token delete ID|TOKEN…  Revoke join or metrics tokens (hosts that joined keep their own credentials).
`;

export async function runToken(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    options: { kubeconfig: { type: 'string' }, ttl: { type: 'string' }, description: { type: 'string' }, metrics: { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  const connection = connectionFor({ kubeconfig: values.kubeconfig });
  const client = clientFor(connection);
  try {
    switch (sub) {
      case 'create': {
        if (positionals.length > 0) throw new CliError('usage', `vireo token create takes no arguments, got ${positionals.join(' ')}: the token is random`);
        if (values.metrics === true) {
          if (values.ttl !== undefined) throw new CliError('usage', '--ttl is for join tokens: a metrics token lasts until "vireo token delete ID"');
          process.stdout.write(`${await createMetricsToken(client, values.description ?? 'scraper (vireo token create --metrics)')}\n`);
          return;
        }
        const ttlSeconds = ttlOf(values.ttl);
        const token = newJoinToken();
        const secret = joinTokenSecret(token, {
          ...(ttlSeconds === 0 ? {} : { expiration: new Date(Date.now() + ttlSeconds * 1000) }),
          ...(values.description === undefined ? {} : { description: values.description }),
        });
        await client.create(resources.secrets, secret);
        process.stdout.write(`${token.id}.${token.secret}\n`);
        process.stdout.write(`Join a host with it (${ttlSeconds === 0 ? 'it never expires' : `it expires in ${values.ttl ?? '24h'}`}):\n`);
        process.stdout.write(`  vireo agent --server ${connection.servers.join(',')} --token ${token.id}.${token.secret} --ca-cert-hash ${caCertHash(connection.caCert)} --data-dir /var/lib/vireo-agent\n`);
        return;
      }
      case 'list': {
        const list = await client.list(resources.secrets, { namespace: joinTokenNamespace });
        const now = new Date();
        const rows = list.items.flatMap((item) => {
          const token = joinTokenOfSecret(item);
          if (token === undefined) return [];
          const expires = token.expiration === undefined ? '<forever>' : token.expiration.toISOString().replace(/\.\d{3}Z$/, 'Z');
          const ttl = token.expiration === undefined ? '<forever>' : joinTokenExpired(token, now) ? '<expired>' : `${Math.ceil((token.expiration.getTime() - now.getTime()) / 3_600_000)}h`;
          return [[`${token.id}.${token.secret}`, ttl, expires, token.usages.join(','), token.description ?? '<none>']];
        });
        for (const item of list.items) {
          const token = metricsTokenOfSecret(item);
          // Only the server keeps a metrics token's hash: the id is all that can be shown.
          if (token !== undefined) rows.push([`vireo-metrics.${token.id}.…`, '<forever>', '<never>', 'metrics', token.description ?? '<none>']);
        }
        if (rows.length === 0) { process.stdout.write('No tokens: make one with "vireo token create".\n'); return; }
        process.stdout.write(renderTable(['TOKEN', 'TTL', 'EXPIRES', 'USAGES', 'DESCRIPTION'], rows));
        return;
      }
      case 'delete': {
        if (positionals.length === 0) throw new CliError('usage', 'vireo token delete needs the ID (or whole token) of each token to revoke: see vireo token list');
        for (const given of positionals) {
          const metricsId = metricsTokenIdOf(given) ?? /^vireo-metrics\.([0-9a-f]{6})/.exec(given)?.[1];
          const id = parseJoinToken(given)?.id ?? metricsId ?? given;
          if (metricsId !== undefined || (await client.tryGet(resources.secrets, joinTokenNamespace, metricsTokenSecretName(id))) !== undefined) {
            await client.delete(resources.secrets, joinTokenNamespace, metricsTokenSecretName(id));
            process.stdout.write(`metrics token ${id} deleted\n`);
            continue;
          }
          if (!/^[a-z0-9]{6}$/.test(id)) throw new CliError('usage', `${given} is not a join token or its ID (6 lowercase letters or digits before the dot)`);
          try {
            await client.delete(resources.secrets, joinTokenNamespace, joinTokenSecretName(id));
          } catch (err) {
            if (err instanceof ApiError && err.reason === 'NotFound') throw new CliError('not-found', `there is no join token ${id} (it was deleted, or expired and was cleaned up): see vireo token list`, err);
            throw err;
          }
          process.stdout.write(`join token ${id} deleted\n`);
        }
        return;
      }
      default:
        throw new CliError('usage', `vireo token needs create, list or delete, got ${sub === undefined ? 'nothing' : `"${sub}"`}:\n${tokenUsage}`);
    }
  } finally {
    client.close();
  }
}

/** Columns padded to their widest cell, as kubectl prints them. */
function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 3))).join('')).join('\n') + '\n';
}

/** `--ttl`: a Go duration (24h, 90m, 1h30m), 0 for none; whole seconds. */
function ttlOf(flag: string | undefined): number {
  if (flag === undefined) return defaultJoinTokenTtlSeconds;
  if (flag === '0') return 0;
  const ms = parseGoDuration(flag);
  if (ms === undefined || ms < 1000) throw new CliError('usage', `--ttl ${flag} is not a duration of at least a second: use e.g. 24h, 90m or 1h30m (0: never expires)`);
  return Math.floor(ms / 1000);
}
