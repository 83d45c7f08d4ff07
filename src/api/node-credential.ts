/**
 * A node's own credential: a random bearer token bound to one node name
 * (`vireo-node.<node name>.<secret>`), which a joining agent gets in
 * exchange for a join token. The server keeps only its SHA-256, in the
 * kube-system Secret `vireo-node-<node name>` of type
 * `vireo.io/node-credential`; deleting that Secret revokes it. Also the
 * wire contract of the join exchange (`POST /vireo/v1/join`) and of the
 * CA discovery before it (`GET /vireo/v1/cluster-info`), and the version
 * rule. Pure: no I/O.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { KObject } from './object.js';
import { isPlainObject } from './object.js';
import { stringMapAt } from './kinds/read.js';
import { joinTokenNamespace } from './join-token.js';

export const nodeCredentialType = 'vireo.io/node-credential';
const credentialPrefix = 'vireo-node.';
/** Node credential Secrets are named this and the node name. */
export const nodeCredentialSecretPrefix = 'vireo-node-';
/** The Node annotation of an agent that joined with a token (its Node is bound to a credential). */
export const joinedAnnotation = 'vireo.io/joined';

export const joinPath = '/vireo/v1/join';
/** Vireo's version (package.json's; a test keeps them equal), sent by an agent when it joins. */
export const vireoVersion = '0.1.0';
export const clusterInfoPath = '/vireo/v1/cluster-info';

/** The name of the Secret that holds a node's credential hash. */
export function nodeCredentialSecretName(nodeName: string): string {
  return `${nodeCredentialSecretPrefix}${nodeName}`;
}

/** The longest node name whose credential Secret name is still a valid name (253 characters). */
export const maxJoinedNodeNameLength = 253 - nodeCredentialSecretPrefix.length;

/** A fresh credential for `nodeName`. */
export function newNodeCredential(nodeName: string): string {
  return `${credentialPrefix}${nodeName}.${randomBytes(32).toString('hex')}`;
}

/** The node a bearer token claims to be, or undefined when it is not a node credential. */
export function nodeNameOfCredential(token: string): string | undefined {
  if (!token.startsWith(credentialPrefix)) return undefined;
  const rest = token.slice(credentialPrefix.length);
  const dot = rest.lastIndexOf('.');
  return dot <= 0 ? undefined : rest.slice(0, dot);
}

export function credentialHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The Secret the server keeps for a node's credential. */
export function nodeCredentialSecret(nodeName: string, token: string, joinTokenId: string): KObject {
  const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: nodeCredentialSecretName(nodeName), namespace: joinTokenNamespace, labels: { 'vireo.io/node': nodeName } },
    type: nodeCredentialType,
    data: { 'node-name': base64(nodeName), 'token-sha256': base64(credentialHash(token)), 'joined-with': base64(joinTokenId) },
  };
}

/** The node name and credential hash a Secret holds, or undefined when it is not a node credential Secret. */
export function credentialOfSecret(secret: KObject): { nodeName: string; hash: string } | undefined {
  if ((secret as { type?: unknown }).type !== nodeCredentialType) return undefined;
  const data = stringMapAt(secret, 'data');
  const nodeName = data['node-name'] === undefined ? undefined : Buffer.from(data['node-name'], 'base64').toString('utf8');
  const hash = data['token-sha256'] === undefined ? undefined : Buffer.from(data['token-sha256'], 'base64').toString('utf8');
  return nodeName === undefined || hash === undefined ? undefined : { nodeName, hash };
}

/** The body of `POST /vireo/v1/join`. */
export interface JoinRequest {
  nodeName: string;
  /** The agent's Vireo version (package version). */
  version: string;
}

/** The answer to a join. */
export interface JoinResponse {
  nodeName: string;
  /** The node's credential; the server keeps only its hash. */
  credential: string;
  serverVersion: string;
  /**
   * SHA-256 (hex) of the bearer token the API server presents to agent
   * endpoints, so the agent can check it without holding it.
   */
  serverTokenSha256: string;
}

/** The answer to `GET /vireo/v1/cluster-info?token-id=ID`. */
export interface ClusterInfo {
  caCert: string;
  /** `caSignature(caCert, token)`: the server knows the join token. */
  signature: string;
}

function stringField(value: Record<string, unknown>, key: string, what: string): string {
  const field = value[key];
  if (typeof field !== 'string' || field === '') throw new Error(`${what} needs a non-empty string "${key}"`);
  return field;
}

function onlyKeys(value: Record<string, unknown>, keys: string[], what: string): void {
  const extra = Object.keys(value).filter((k) => !keys.includes(k));
  if (extra.length > 0) throw new Error(`${what} has unknown fields: ${extra.join(', ')}`);
}

/** Parses a join request body; throws an Error saying what is wrong. */
export function parseJoinRequest(value: unknown): JoinRequest {
  const what = 'a join request';
  if (!isPlainObject(value)) throw new Error(`${what} must be a JSON object with nodeName and version`);
  onlyKeys(value, ['nodeName', 'version'], what);
  return { nodeName: stringField(value, 'nodeName', what), version: stringField(value, 'version', what) };
}

export function parseJoinResponse(value: unknown): JoinResponse {
  const what = 'the server\'s answer to the join';
  if (!isPlainObject(value)) throw new Error(`${what} is not a JSON object`);
  return {
    nodeName: stringField(value, 'nodeName', what),
    credential: stringField(value, 'credential', what),
    serverVersion: stringField(value, 'serverVersion', what),
    serverTokenSha256: stringField(value, 'serverTokenSha256', what),
  };
}

export function parseClusterInfo(value: unknown): ClusterInfo {
  const what = 'the server\'s cluster-info';
  if (!isPlainObject(value)) throw new Error(`${what} is not a JSON object`);
  return { caCert: stringField(value, 'caCert', what), signature: stringField(value, 'signature', what) };
}

/** The major.minor of a version (`0.1.0` → `0.1`); undefined when it is not `X.Y[.Z…]`. */
function majorMinor(version: string): string | undefined {
  return /^v?(\d+)\.(\d+)(?:[.+-].*)?$/.exec(version)?.slice(1, 3).join('.');
}

/** Agents and servers work together when their versions share major.minor. */
export function versionsCompatible(agent: string, server: string): boolean {
  const a = majorMinor(agent);
  return a !== undefined && a === majorMinor(server);
}
