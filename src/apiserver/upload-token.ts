/**
 * CDI's upload tokens: short-lived, signed by the API server, naming one
 * PVC. CDI signs a JWT with an RSA key; Vireo's server is both the issuer
 * (UploadTokenRequest) and the checker (the upload proxy), so a shared
 * secret suffices: `base64url(payload) "." base64url(HMAC-SHA256)`. The key
 * lives in the server's data directory, so tokens survive a restart.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError } from '../api/errors.js';
import { isPlainObject } from '../api/object.js';

/** How long a token is good for (CDI's is 5 minutes too). */
export const uploadTokenTtlMs = 5 * 60_000;

/** Clock skew a token's expiry tolerates (CDI's `uploadTokenLeeway`). */
const leewayMs = 10_000;

/** What a valid token allows: uploading into one PVC until `expires`. */
export interface UploadGrant {
  namespace: string;
  pvc: string;
  /** Milliseconds since the epoch. */
  expires: number;
}

/** Issues and checks upload tokens with one key. */
export class UploadTokens {
  constructor(
    private readonly key: Buffer,
    private readonly now: () => number = Date.now,
  ) {}

  /** A token for uploads into PVC `namespace/pvc`, good for `ttlMs`. */
  issue(namespace: string, pvc: string, ttlMs: number = uploadTokenTtlMs): string {
    const payload = Buffer.from(JSON.stringify({ op: 'upload', ns: namespace, pvc, exp: this.now() + ttlMs })).toString('base64url');
    return `${payload}.${this.sign(payload)}`;
  }

  /** The grant of `token`; throws a 401 ApiError saying why it is not one. */
  verify(token: string): UploadGrant {
    const [payload, signature, ...rest] = token.split('.');
    if (payload === undefined || signature === undefined || rest.length > 0 || payload === '') throw unauthorized('it is not an upload token');
    const expected = Buffer.from(this.sign(payload));
    const presented = Buffer.from(signature);
    if (expected.length !== presented.length || !timingSafeEqual(expected, presented)) throw unauthorized('its signature is not this server\'s');
    let claims: unknown;
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      claims = undefined;
    }
    if (!isPlainObject(claims) || claims.op !== 'upload' || typeof claims.ns !== 'string' || typeof claims.pvc !== 'string' || typeof claims.exp !== 'number') {
      throw unauthorized('its payload is not an upload grant');
    }
    if (claims.exp + leewayMs < this.now()) throw unauthorized(`it expired at ${new Date(claims.exp).toISOString()}`);
    return { namespace: claims.ns, pvc: claims.pvc, expires: claims.exp };
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}

function unauthorized(why: string): ApiError {
  return new ApiError('Unauthorized', `the upload token is not valid: ${why}; request a new one (UploadTokenRequest, as vireo image-upload does)`);
}

/** The signing key kept in `dataDir` (`upload-token.key`, 0600), made on first use. */
export function loadUploadKey(dataDir: string): Buffer {
  const path = join(dataDir, 'upload-token.key');
  try {
    const key = readFileSync(path);
    if (key.length >= 32) return key;
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ENOENT') throw err;
  }
  const key = randomBytes(32);
  writeFileSync(path, key, { mode: 0o600 });
  chmodSync(path, 0o600);
  return key;
}
