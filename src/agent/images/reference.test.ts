import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../../api/errors.js';
import { normalizeImageReference, parseImageReference } from './reference.js';

const digest = `sha256:${'ab'.repeat(32)}`;

describe('parseImageReference', () => {
  it('normalises references as a container runtime does', () => {
    const cases: [string, string][] = [
      ['localhost/vireo/tiny:latest', 'localhost/vireo/tiny:latest'],
      ['localhost/vireo/tiny', 'localhost/vireo/tiny:latest'],
      ['busybox', 'docker.io/library/busybox:latest'],
      ['kubevirt/cirros-container-disk-demo', 'docker.io/kubevirt/cirros-container-disk-demo:latest'],
      ['quay.io/containerdisks/fedora:40', 'quay.io/containerdisks/fedora:40'],
      ['registry.local:5000/a/b/c:v1.2_x-3', 'registry.local:5000/a/b/c:v1.2_x-3'],
      ['localhost:5000/disk', 'localhost:5000/disk:latest'],
      ['[::1]:5000/disk:1', '[::1]:5000/disk:1'],
      [`quay.io/x/y@${digest}`, `quay.io/x/y@${digest}`],
      [`quay.io/x/y:ignored@${digest}`, `quay.io/x/y@${digest}`],
      ['my-reg.io/a__b/c-d--e.f:T', 'my-reg.io/a__b/c-d--e.f:T'],
    ];
    for (const [input, want] of cases) assert.equal(normalizeImageReference(input), want, input);
  });

  it('splits the parts', () => {
    assert.deepEqual(parseImageReference('localhost:5000/vireo/tiny:v1'), {
      registry: 'localhost:5000', repository: 'vireo/tiny', tag: 'v1', normalized: 'localhost:5000/vireo/tiny:v1',
    });
    assert.deepEqual(parseImageReference(`busybox@${digest}`), {
      registry: 'docker.io', repository: 'library/busybox', digest, normalized: `docker.io/library/busybox@${digest}`,
    });
  });

  it('rejects invalid references, saying what is wrong', () => {
    const cases: [string, RegExp][] = [
      ['', /it is empty/],
      [' busybox', /whitespace/],
      ['docker://busybox', /without a scheme/],
      ['Busybox', /repository component "Busybox" must be lowercase/],
      ['localhost/Vireo/tiny', /repository component "Vireo"/],
      ['localhost/vireo//tiny', /empty path component/],
      ['localhost/vireo/tiny:', /tag "" must be/],
      ['localhost/vireo/tiny:-x', /tag "-x" must be/],
      [`localhost/vireo/tiny:${'x'.repeat(129)}`, /tag "x+" must be/],
      ['localhost/vireo/tiny@sha256:abc', /digest "sha256:abc" is not/],
      ['-bad.io/x', /registry "-bad.io" is not a host name/],
      ['my_reg.io/x', /registry "my_reg.io" is not a host name/],
      [':latest', /no repository name/],
      [`localhost/${'a'.repeat(250)}`, /longer than 255/],
    ];
    for (const [input, why] of cases) {
      assert.throws(() => parseImageReference(input), (err: unknown) => {
        assert.ok(err instanceof ApiError, input);
        assert.equal(err.reason, 'BadRequest');
        assert.match(err.message, /^invalid image reference ".*": /);
        assert.match(err.message, why, input);
        return true;
      });
    }
  });
});
