/**
 * The scraper's read-only token: a random bearer token
 * (`vireo-metrics.<id>.<secret>`) that may read `/metrics` on the API
 * server, a node's metrics through the node proxy, and `/metrics` on agent
 * endpoints, and nothing else. The server keeps only its SHA-256, in the
 * kube-system Secret `vireo-metrics-<id>` of type `vireo.io/metrics-token`,
 * read on every request: deleting the Secret revokes the token. Pure: no I/O.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { KObject } from './object.js';
import { stringMapAt } from './kinds/read.js';
import { joinTokenNamespace } from './join-token.js';

export const metricsTokenType = 'vireo.io/metrics-token';
const tokenPrefix = 'vireo-metrics.';
export const metricsTokenSecretPrefix = 'vireo-metrics-';
/** The user a metrics token is, in a TokenReview. */
export const metricsReaderUsername = 'system:vireo:metrics-reader';
export const metricsReaderGroup = 'system:vireo-metrics-readers';

/** A token split into its id (which names its Secret) and its secret part. */
export interface MetricsToken {
  id: string;
  token: string;
}

/** A fresh token; its id is 6 lowercase hex characters, as join token ids are short. */
export function newMetricsToken(): MetricsToken {
  const id = randomBytes(3).toString('hex');
  return { id, token: `${tokenPrefix}${id}.${randomBytes(32).toString('hex')}` };
}

/** The id a bearer token claims, or undefined when it is not a metrics token. */
export function metricsTokenIdOf(token: string): string | undefined {
  return /^vireo-metrics\.([0-9a-f]{6})\.[0-9a-f]{64}$/.exec(token)?.[1];
}

export function metricsTokenSecretName(id: string): string {
  return `${metricsTokenSecretPrefix}${id}`;
}

export function metricsTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The Secret the server keeps for a metrics token. */
export function metricsTokenSecret(token: MetricsToken, description?: string): KObject {
  const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: metricsTokenSecretName(token.id), namespace: joinTokenNamespace, labels: { 'vireo.io/metrics-token': 'true' } },
    type: metricsTokenType,
    data: { 'token-id': base64(token.id), 'token-sha256': base64(metricsTokenHash(token.token)), ...(description === undefined ? {} : { description: base64(description) }) },
  };
}

/** The id, hash and description a Secret holds, or undefined when it is not a metrics token Secret. */
export function metricsTokenOfSecret(secret: KObject): { id: string; hash: string; description: string | undefined } | undefined {
  if ((secret as { type?: unknown }).type !== metricsTokenType) return undefined;
  const data = stringMapAt(secret, 'data');
  const decode = (value: string | undefined): string | undefined => (value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8'));
  const id = decode(data['token-id']);
  const hash = decode(data['token-sha256']);
  return id === undefined || hash === undefined ? undefined : { id, hash, description: decode(data.description) };
}

/** True when a request may be made with a metrics token: reads of the metrics, nothing else. */
export function isMetricsRead(method: string, path: string): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  return path === '/metrics' || /^\/api\/v1\/nodes\/[^/]+\/proxy\/metrics$/.test(path);
}
