/**
 * Image references as KubeVirt users write them in `containerDisk.image`
 * and `kernelBoot.container.image`, normalised the way a container runtime
 * does (the distribution/reference grammar and Docker's defaults): a name
 * without a registry is on `docker.io` (`library/` for one-word names), a
 * reference without tag or digest means `:latest`.
 */
import { badRequest } from '../../api/errors.js';
import type { ApiError } from '../../api/errors.js';

/** A parsed, normalised image reference. */
export interface ImageReference {
  /** `localhost`, `quay.io`, `registry.local:5000`. */
  registry: string;
  /** `vireo/tiny`, `library/busybox`. */
  repository: string;
  /** Set when the reference has no digest; `latest` when it named none. */
  tag?: string;
  /** `sha256:<64 hex>`; a digest wins over a tag, as in a pull. */
  digest?: string;
  /** The canonical form: `localhost/vireo/tiny:latest`, `docker.io/library/busybox@sha256:…`. */
  normalized: string;
}

const defaultRegistry = 'docker.io';
const defaultTag = 'latest';
const maxNameLength = 255;

const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const registryPattern = new RegExp(`^(?:${domainComponent}(?:\\.${domainComponent})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`);
const pathComponentPattern = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^\w[\w.-]{0,127}$/;
const digestPattern = /^sha256:[a-f0-9]{64}$/;

function invalid(reference: string, why: string): ApiError {
  return badRequest(`invalid image reference "${reference}": ${why}`);
}

/**
 * Parses and normalises `reference`. Throws an ApiError (`BadRequest`) that
 * says what is wrong with it otherwise.
 */
export function parseImageReference(reference: string): ImageReference {
  if (reference === '') throw invalid(reference, 'it is empty');
  if (reference.trim() !== reference || /\s/.test(reference)) throw invalid(reference, 'it contains whitespace');
  if (reference.includes('://')) throw invalid(reference, 'write it without a scheme, e.g. "quay.io/containerdisks/fedora:40"');

  let rest = reference;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestPattern.test(digest)) throw invalid(reference, `digest "${digest}" is not "sha256:" followed by 64 lowercase hex digits`);
  }

  // A tag follows the last ":" that comes after the last "/" (a ":" before it is a registry port).
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) throw invalid(reference, `tag "${tag}" must be 1 to 128 letters, digits, "_", "." or "-", not starting with "." or "-"`);
  }
  if (rest === '') throw invalid(reference, 'it has no repository name');

  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  const namesRegistry = first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase());
  const registry = namesRegistry ? first : defaultRegistry;
  let repository = namesRegistry ? rest.slice(slash + 1) : rest;
  if (!registryPattern.test(registry)) throw invalid(reference, `registry "${registry}" is not a host name with an optional port`);
  if (registry === defaultRegistry && !repository.includes('/')) repository = `library/${repository}`;

  for (const component of repository.split('/')) {
    if (component === '') throw invalid(reference, 'its repository has an empty path component');
    if (!pathComponentPattern.test(component)) {
      throw invalid(reference, `repository component "${component}" must be lowercase letters and digits, separated by ".", "_", "__" or "-"`);
    }
  }
  const name = `${registry}/${repository}`;
  if (name.length > maxNameLength) throw invalid(reference, `its name is longer than ${maxNameLength} characters`);

  if (digest !== undefined) return { registry, repository, digest, normalized: `${name}@${digest}` };
  const finalTag = tag ?? defaultTag;
  return { registry, repository, tag: finalTag, normalized: `${name}:${finalTag}` };
}

/** The normalised form of `reference` (see {@link parseImageReference}). */
export function normalizeImageReference(reference: string): string {
  return parseImageReference(reference).normalized;
}
