/** The node image store and the test guest that fills it. */
export { ImageStore } from './store.js';
export type { ContainerDiskImage, ImageFiles } from './store.js';
export { normalizeImageReference, parseImageReference } from './reference.js';
export type { ImageReference } from './reference.js';
export { TEST_GUEST_IMAGE, TEST_GUEST_READY_MARKER, defaultGuestCacheDir, ensureTestGuest, importTestGuest } from './guest.js';
export type { EnsureTestGuestOptions, TestGuest } from './guest.js';
