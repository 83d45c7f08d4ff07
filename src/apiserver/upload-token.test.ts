import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from '../api/errors.js';
import { UploadTokens, loadUploadKey, uploadTokenTtlMs } from './upload-token.js';

const key = Buffer.alloc(32, 7);

function rejects(fn: () => unknown, why: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof ApiError && err.reason === 'Unauthorized' && why.test(err.message));
}

test('a token names its PVC and expires after five minutes', () => {
  let now = 1_000_000;
  const tokens = new UploadTokens(key, () => now);
  const token = tokens.issue('ns', 'disk');
  assert.deepEqual(tokens.verify(token), { namespace: 'ns', pvc: 'disk', expires: 1_000_000 + uploadTokenTtlMs });
  now += uploadTokenTtlMs + 5_000;
  assert.equal(tokens.verify(token).pvc, 'disk', 'a few seconds of clock skew are tolerated');
  now += 10_000;
  rejects(() => tokens.verify(token), /expired/);
});

test('a token of another key, a changed payload or garbage is refused', () => {
  const tokens = new UploadTokens(key);
  const token = tokens.issue('ns', 'disk');
  rejects(() => new UploadTokens(Buffer.alloc(32, 8)).verify(token), /signature/);
  const [, signature] = token.split('.');
  const forged = `${Buffer.from(JSON.stringify({ op: 'upload', ns: 'ns', pvc: 'other', exp: Date.now() + 60_000 })).toString('base64url')}.${signature ?? ''}`;
  rejects(() => tokens.verify(forged), /signature/);
  rejects(() => tokens.verify('not-a-token'), /not an upload token/);
  rejects(() => tokens.verify(`${token}.x`), /not an upload token/);
});

test('the key is made once in the data directory, readable by its owner only', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-upload-key-'));
  try {
    const first = loadUploadKey(dir);
    assert.equal(first.length, 32);
    assert.deepEqual(loadUploadKey(dir), first);
    assert.equal(statSync(join(dir, 'upload-token.key')).mode & 0o777, 0o600);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
