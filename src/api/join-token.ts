/**
 * Join tokens, as kubeadm's bootstrap tokens: `<id>.<secret>`
 * (`[a-z0-9]{6}.[a-z0-9]{16}`), kept as kube-system Secrets of type
 * `bootstrap.kubernetes.io/token` named `bootstrap-token-<id>`, so kubectl
 * lists them and deleting one revokes it. Also the CA pin a joining host
 * checks (`sha256:` of the CA's SubjectPublicKeyInfo, kubeadm's
 * `--discovery-token-ca-cert-hash`) and the signature with which the server
 * proves it knows a token before the host trusts its CA. Pure: no I/O.
 */
import { X509Certificate, createHash, createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import type { KObject } from './object.js';
import { stringMapAt } from './kinds/read.js';

/** The Secret type of a join token, as Kubernetes' bootstrap tokens. */
export const bootstrapTokenType = 'bootstrap.kubernetes.io/token';
/** Where join tokens live. */
export const joinTokenNamespace = 'kube-system';
export const bootstrapTokenPrefix = 'bootstrap-token-';
export const joinTokenPattern = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;
/** kubeadm's default lifetime. */
export const defaultJoinTokenTtlSeconds = 24 * 3600;

/** A join token as the server keeps it. */
export interface JoinToken {
  id: string;
  secret: string;
  /** Absent: never expires (`--ttl 0`). */
  expiration?: Date;
  description?: string;
  /** `usage-bootstrap-*` entries set to "true". */
  usages: string[];
}

/** The parts of `<id>.<secret>`, or undefined when it does not look like a join token. */
export function parseJoinToken(text: string): { id: string; secret: string } | undefined {
  const m = joinTokenPattern.exec(text);
  return m?.[1] === undefined || m[2] === undefined ? undefined : { id: m[1], secret: m[2] };
}

const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';

function randomText(length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) text += alphabet.charAt(randomInt(alphabet.length));
  return text;
}

/** A fresh random token. */
export function newJoinToken(): { id: string; secret: string } {
  return { id: randomText(6), secret: randomText(16) };
}

export function joinTokenSecretName(id: string): string {
  return `${bootstrapTokenPrefix}${id}`;
}

function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/** The Secret that stores a token (Kubernetes' bootstrap token fields). */
export function joinTokenSecret(token: { id: string; secret: string }, options: { expiration?: Date; description?: string }): KObject {
  const data: Record<string, string> = {
    'token-id': base64(token.id),
    'token-secret': base64(token.secret),
    'usage-bootstrap-authentication': base64('true'),
  };
  if (options.expiration !== undefined) data['expiration'] = base64(options.expiration.toISOString().replace(/\.\d{3}Z$/, 'Z'));
  if (options.description !== undefined) data['description'] = base64(options.description);
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name: joinTokenSecretName(token.id), namespace: joinTokenNamespace }, type: bootstrapTokenType, data };
}

/** The token a Secret stores, or undefined when it is not a well-formed join token Secret. */
export function joinTokenOfSecret(secret: KObject): JoinToken | undefined {
  if ((secret as { type?: unknown }).type !== bootstrapTokenType) return undefined;
  const data = stringMapAt(secret, 'data');
  const field = (key: string): string | undefined => {
    const value = data[key];
    return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
  };
  const id = field('token-id');
  const secretText = field('token-secret');
  if (id === undefined || secretText === undefined || parseJoinToken(`${id}.${secretText}`) === undefined) return undefined;
  if (secret.metadata.name !== joinTokenSecretName(id)) return undefined;
  const token: JoinToken = { id, secret: secretText, usages: Object.keys(data).filter((k) => k.startsWith('usage-bootstrap-') && field(k) === 'true').map((k) => k.slice('usage-bootstrap-'.length)) };
  const expiration = field('expiration');
  if (expiration !== undefined) token.expiration = new Date(expiration);
  const description = field('description');
  if (description !== undefined) token.description = description;
  return token;
}

/** True when the token's expiration has passed (an unreadable expiration counts as expired). */
export function joinTokenExpired(token: JoinToken, now: Date): boolean {
  if (token.expiration === undefined) return false;
  return Number.isNaN(token.expiration.getTime()) || token.expiration.getTime() <= now.getTime();
}

/** Constant-time comparison of two secrets of any length. */
export function sameSecret(a: string, b: string): boolean {
  const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(a), digest(b));
}

/** kubeadm's CA pin: `sha256:` and the hex SHA-256 of the CA certificate's DER SubjectPublicKeyInfo. */
export function caCertHash(caCertPem: string): string {
  const spki = new X509Certificate(caCertPem).publicKey.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}

/** The server's proof that it knows the token: an HMAC of the CA certificate keyed with the token. */
export function caSignature(caCertPem: string, token: { id: string; secret: string }): string {
  return createHmac('sha256', `${token.id}.${token.secret}`).update(caCertPem).digest('hex');
}
