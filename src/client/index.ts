/** What other parts may use of the API client. */
export type { Client, ClientWatchEvent, DeleteOptions, ListQuery, PatchOptions, PatchType, ResourceRef, WatchQuery } from './types.js';
export { HttpClient, collectionPath } from './http-client.js';
export type { HttpClientOptions } from './http-client.js';
export { Informer, objectKeyOf, splitKey } from './informer.js';
export type { KeyHandler } from './informer.js';
export { resources } from './resources.js';
export { errorFromResponse } from './status-error.js';
export { parseServerList } from './server-list.js';
