/**
 * The pieces of registry authentication that are plain data: the
 * `WWW-Authenticate` challenge a registry answers 401 with (`Basic`, or the
 * `Bearer realm=…,service=…,scope=…` token flow every public registry
 * uses), and the credentials of a `kubernetes.io/dockerconfigjson` Secret
 * (what `containerDisk.imagePullSecret` names). Pure functions.
 */
import { asRecord } from '../../api/kinds/read.js';

/** A user name and password for one registry. */
export interface RegistryCredentials {
  username: string;
  password: string;
}

/** What a 401 asks for. */
export type AuthChallenge =
  | { scheme: 'basic' }
  | { scheme: 'bearer'; realm: string; service?: string; scope?: string };

/** A Secret whose credentials cannot be read; the message says why. */
export class PullSecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PullSecretError';
  }
}

/**
 * The challenge of a `WWW-Authenticate` header, or undefined for a scheme
 * the pull does not speak. Parameters are `key=value` or `key="value"`
 * (with `\"` escapes), comma separated; a scope may itself contain commas
 * inside its quotes.
 */
export function parseChallenge(header: string): AuthChallenge | undefined {
  const match = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header);
  if (match === null) return undefined;
  const scheme = (match[1] ?? '').toLowerCase();
  if (scheme === 'basic') return { scheme: 'basic' };
  if (scheme !== 'bearer') return undefined;
  const params = challengeParams(match[2] ?? '');
  const realm = params.get('realm');
  if (realm === undefined || realm === '') return undefined;
  const challenge: AuthChallenge = { scheme: 'bearer', realm };
  const service = params.get('service');
  const scope = params.get('scope');
  if (service !== undefined) challenge.service = service;
  if (scope !== undefined) challenge.scope = scope;
  return challenge;
}

function challengeParams(text: string): Map<string, string> {
  const params = new Map<string, string>();
  const pattern = /\s*([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(?:,|$)/gy;
  for (let found = pattern.exec(text); found !== null && found[0] !== ''; found = pattern.exec(text)) {
    const value = found[2] !== undefined ? found[2].replace(/\\(.)/g, '$1') : (found[3] ?? '');
    params.set((found[1] ?? '').toLowerCase(), value);
  }
  return params;
}

// Docker Hub is written many ways in config files; they all mean docker.io.
const dockerHubAliases: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** The host[:port] a `.dockerconfigjson` auths key names: `https://quay.io/v1/` → `quay.io`. */
function authsKeyHost(key: string): string {
  const bare = key.replace(/^[a-z]+:\/\//i, '');
  const slash = bare.indexOf('/');
  const host = (slash >= 0 ? bare.slice(0, slash) : bare).toLowerCase();
  return dockerHubAliases.has(host) ? 'docker.io' : host;
}

/**
 * The credentials for `registry` in the JSON of a Secret's
 * `.dockerconfigjson`, or undefined when the file names none for it.
 * Throws a {@link PullSecretError} when the file is malformed.
 */
export function credentialsFromDockerConfig(json: string, registry: string): RegistryCredentials | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw new PullSecretError(`its .dockerconfigjson is not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const auths = asRecord(asRecord(parsed)?.auths);
  if (auths === undefined) throw new PullSecretError('its .dockerconfigjson has no "auths" object');
  const want = dockerHubAliases.has(registry.toLowerCase()) ? 'docker.io' : registry.toLowerCase();
  for (const [key, value] of Object.entries(auths)) {
    if (authsKeyHost(key) !== want) continue;
    const entry = asRecord(value) ?? {};
    if (typeof entry.username === 'string' && typeof entry.password === 'string') return { username: entry.username, password: entry.password };
    if (typeof entry.auth === 'string') return decodeAuth(entry.auth, key);
    throw new PullSecretError(`its entry for "${key}" has neither "auth" nor "username" and "password"`);
  }
  return undefined;
}

function decodeAuth(auth: string, key: string): RegistryCredentials {
  const text = Buffer.from(auth, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) throw new PullSecretError(`its "auth" for "${key}" is not base64 of "user:password"`);
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** The `Authorization` header value for basic credentials. */
export function basicAuthorization(credentials: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
}
