/**
 * How the VM commands reach the API server: the kubeconfig (from
 * `--kubeconfig`, else the first file in `$KUBECONFIG`, else
 * `~/.vireo/kubeconfig`), its current context's server, CA and bearer token,
 * and the namespace (`-n`, else the context's, else `default`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, delimiter, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { recordAt, recordsAt, stringAt } from '../../api/kinds/read.js';
import { isPlainObject } from '../../api/object.js';
import { HttpClient, parseServerList } from '../../client/index.js';
import { CliError } from '../errors.js';

export interface Connection {
  /** `https://host:port`: the kubeconfig's server. */
  server: string;
  /**
   * Every server of the cluster the client may use, `server` first: more
   * come from the cluster's `vireo.io/servers` extension (kubectl ignores
   * it), for several `vireo server`s on one etcd.
   */
  servers: string[];
  token: string;
  caCert: string;
  /** The namespace the command acts in. */
  namespace: string;
  /** The kubeconfig file it came from, for messages. */
  kubeconfig: string;
}

/** The kubeconfig file to use: the flag, else the first existing `$KUBECONFIG` entry, else `~/.vireo/kubeconfig`. */
export function kubeconfigPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag !== undefined && flag !== '') return flag;
  const listed = (env.KUBECONFIG ?? '').split(delimiter).filter((p) => p !== '');
  // kubectl merges every file in the list; the vireo CLI needs one context, so it takes the first that exists.
  const found = listed.find((p) => existsSync(p));
  if (found !== undefined) return found;
  if (listed[0] !== undefined) return listed[0];
  return join(homedir(), '.vireo', 'kubeconfig');
}

function bad(path: string, what: string): CliError {
  return new CliError('usage', `${path} is not a usable kubeconfig: ${what}`);
}

function named(list: Record<string, unknown>[], name: string, field: string): Record<string, unknown> | undefined {
  return recordAt(list.find((entry) => entry.name === name), field);
}

/** Reads a kubeconfig and returns its current context's connection; `namespace` overrides the context's. */
export function loadConnection(path: string, namespace?: string): Connection {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError('not-found', `no kubeconfig at ${path}: start the server (vireo up), or pass --kubeconfig FILE or set KUBECONFIG`, err);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw bad(path, `it is not valid YAML (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!isPlainObject(doc)) throw bad(path, 'it is not a YAML mapping');
  const contexts = recordsAt(doc, 'contexts');
  const contextName = stringAt(doc, 'current-context') ?? (contexts.length === 1 ? stringAt(contexts[0], 'name') : undefined);
  if (contextName === undefined || contextName === '') throw bad(path, 'it has no current-context: set one with kubectl config use-context');
  const context = named(contexts, contextName, 'context');
  if (context === undefined) throw bad(path, `its current-context "${contextName}" is not among its contexts`);
  const clusterName = stringAt(context, 'cluster') ?? '';
  const cluster = named(recordsAt(doc, 'clusters'), clusterName, 'cluster');
  if (cluster === undefined) throw bad(path, `context "${contextName}" names cluster "${clusterName}", which it does not define`);
  const server = stringAt(cluster, 'server');
  if (server === undefined || !/^https:\/\//.test(server)) throw bad(path, `cluster "${clusterName}" needs an https:// server address, got ${JSON.stringify(server ?? null)}`);
  const userName = stringAt(context, 'user') ?? '';
  const user = named(recordsAt(doc, 'users'), userName, 'user');
  if (user === undefined) throw bad(path, `context "${contextName}" names user "${userName}", which it does not define`);
  const first = server.replace(/\/+$/, '');
  return {
    server: first,
    servers: serversOf(path, clusterName, cluster, first),
    caCert: caCertOf(path, clusterName, cluster),
    token: tokenOf(path, userName, user),
    namespace: namespace ?? stringAt(context, 'namespace') ?? 'default',
    kubeconfig: path,
  };
}

/** The name of the kubeconfig cluster extension that lists more servers of the cluster. */
export const serversExtension = 'vireo.io/servers';

/** The cluster's server, then those its `vireo.io/servers` extension lists (`extension: {servers: [URL…]}`). */
function serversOf(path: string, clusterName: string, cluster: Record<string, unknown>, first: string): string[] {
  const entry = recordsAt(cluster, 'extensions').find((e) => e.name === serversExtension);
  const listed = recordAt(entry, 'extension')?.servers;
  if (entry === undefined) return [first];
  if (!Array.isArray(listed) || listed.some((s) => typeof s !== 'string')) throw bad(path, `cluster "${clusterName}" has a ${serversExtension} extension without a list of server URLs (extension: {servers: [https://HOST:PORT, …]})`);
  try {
    return parseServerList([first, ...(listed as string[])]);
  } catch (err) {
    throw bad(path, `cluster "${clusterName}": ${err instanceof Error ? err.message : String(err)}`);
  }
}

function relativeTo(kubeconfig: string, file: string): string {
  return isAbsolute(file) ? file : join(dirname(kubeconfig), file);
}

function caCertOf(path: string, clusterName: string, cluster: Record<string, unknown>): string {
  const data = stringAt(cluster, 'certificate-authority-data');
  if (data !== undefined) return Buffer.from(data, 'base64').toString('utf8');
  const file = stringAt(cluster, 'certificate-authority');
  if (file === undefined) throw bad(path, `cluster "${clusterName}" has no certificate-authority-data or certificate-authority: the CLI verifies the server's certificate`);
  try {
    return readFileSync(relativeTo(path, file), 'utf8');
  } catch (err) {
    throw new CliError('not-found', `cannot read the CA certificate ${file} named by ${path}: ${err instanceof Error ? err.message : String(err)}`, err);
  }
}

function tokenOf(path: string, userName: string, user: Record<string, unknown>): string {
  const token = stringAt(user, 'token');
  if (token !== undefined && token !== '') return token;
  const file = stringAt(user, 'tokenFile');
  if (file !== undefined) {
    try {
      return readFileSync(relativeTo(path, file), 'utf8').trim();
    } catch (err) {
      throw new CliError('not-found', `cannot read the token file ${file} named by ${path}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
  }
  throw bad(path, `user "${userName}" has no token: the vireo CLI authenticates with a bearer token (use the kubeconfig vireo server writes: vireo kubeconfig)`);
}

/** The `-n`/`--namespace` and `--kubeconfig` flags every VM command takes (node:util parseArgs form). */
export const connectionFlags = {
  namespace: { type: 'string', short: 'n' },
  kubeconfig: { type: 'string' },
} as const;

/** The connection for parsed `connectionFlags` values. */
export function connectionFor(values: { namespace?: string | undefined; kubeconfig?: string | undefined }): Connection {
  return loadConnection(kubeconfigPath(values.kubeconfig), values.namespace);
}

export function clientFor(connection: Connection): HttpClient {
  return new HttpClient({ server: connection.servers, token: connection.token, caCert: connection.caCert, userAgent: 'vireo-cli' });
}

/** The path of a `subresources.kubevirt.io` operation. */
export function subresourcePath(connection: Connection, parent: 'virtualmachines' | 'virtualmachineinstances', name: string, op: string): string {
  return `/apis/subresources.kubevirt.io/v1/namespaces/${encodeURIComponent(connection.namespace)}/${parent}/${encodeURIComponent(name)}/${op}`;
}
