import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManifestError, assertDigest, manifestMediaTypes, parseManifest, pickPlatform, platformsOf, sha256Digest } from './registry-manifest.js';

const d = (c: string): string => `sha256:${c.repeat(64)}`;
const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

describe('parseManifest', () => {
  it('reads an OCI image manifest: config and layers in order', () => {
    const parsed = parseManifest(json({
      schemaVersion: 2,
      mediaType: manifestMediaTypes.ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('c'), size: 10 },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('1'), size: 100 },
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: d('2'), size: 200, annotations: { a: 'b' } },
      ],
    }), undefined);
    assert.equal(parsed.kind, 'image');
    assert.deepEqual(parsed.kind === 'image' ? parsed.layers.map((l) => l.digest) : [], [d('1'), d('2')]);
  });

  it('takes the media type from Content-Type, then from the shape, when the body has none', () => {
    const list = json({ schemaVersion: 2, manifests: [] });
    assert.equal(parseManifest(list, `${manifestMediaTypes.dockerList}; charset=utf-8`).mediaType, manifestMediaTypes.dockerList);
    assert.equal(parseManifest(list, 'application/json').kind, 'index');
    const image = json({ schemaVersion: 2, config: { mediaType: 'x', digest: d('c'), size: 1 }, layers: [] });
    assert.equal(parseManifest(image, undefined).kind, 'image');
  });

  it('reads an index with platforms and picks linux/amd64', () => {
    const parsed = parseManifest(json({
      schemaVersion: 2,
      mediaType: manifestMediaTypes.dockerList,
      manifests: [
        { mediaType: manifestMediaTypes.dockerManifest, digest: d('a'), size: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        { mediaType: manifestMediaTypes.dockerManifest, digest: d('b'), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: manifestMediaTypes.dockerManifest, digest: d('e'), size: 1 },
      ],
    }), undefined);
    assert.ok(parsed.kind === 'index');
    assert.equal(pickPlatform(parsed.manifests, { os: 'linux', architecture: 'amd64' })?.digest, d('b'));
    assert.equal(pickPlatform(parsed.manifests, { os: 'linux', architecture: 's390x' }), undefined);
    assert.equal(platformsOf(parsed.manifests), 'linux/arm64, linux/amd64, unknown');
  });

  it('says what is wrong with a manifest it cannot use', () => {
    const bad = (body: unknown, pattern: RegExp): void => {
      assert.throws(() => parseManifest(typeof body === 'string' ? Buffer.from(body) : json(body), undefined), (err: unknown) => err instanceof ManifestError && pattern.test(err.message));
    };
    bad('{', /not JSON/);
    bad([], /not a JSON object/);
    bad({ schemaVersion: 1, fsLayers: [] }, /schemaVersion 1; only schema 2/);
    bad({ schemaVersion: 2, mediaType: 'application/x-other', layers: [] }, /media type "application\/x-other" is not one/);
    bad({ schemaVersion: 2, config: { mediaType: 'x', digest: d('c'), size: 1 } }, /no "layers" array/);
    bad({ schemaVersion: 2, config: { mediaType: 'x', digest: 'md5:abc', size: 1 }, layers: [] }, /config has digest "md5:abc"/);
    bad({ schemaVersion: 2, config: { mediaType: 'x', digest: d('c'), size: -1 }, layers: [] }, /config\.size is not a non-negative integer/);
  });
});

describe('digests', () => {
  it('hashes bytes as sha256:<hex> and checks the form', () => {
    assert.equal(sha256Digest(Buffer.from('')), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.doesNotThrow(() => { assertDigest(d('f'), 'x'); });
    assert.throws(() => { assertDigest(`sha256:${'F'.repeat(64)}`, 'layer 1'); }, /layer 1 has digest/);
  });
});
