/** The node image store, the registry puller that fills it, and the test guest. */
export { ImageStore } from './store.js';
export type { ContainerDiskImage, ImageFiles } from './store.js';
export { normalizeImageReference, parseImageReference } from './reference.js';
export type { ImageReference } from './reference.js';
export { TEST_GUEST_IMAGE, TEST_GUEST_READY_MARKER, defaultGuestCacheDir, ensureTestGuest, importTestGuest } from './guest.js';
export type { EnsureTestGuestOptions, TestGuest } from './guest.js';
export { ImagePuller, ImagePullError, pullerFor } from './registry.js';
export type { ImagePullFailure, ImageRequest, PullEvent } from './registry.js';
export { credentialsFromDockerConfig } from './registry-auth.js';
export type { RegistryCredentials } from './registry-auth.js';
export type { PullPolicy } from './registry-policy.js';
