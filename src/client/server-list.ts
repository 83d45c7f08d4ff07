/**
 * The API servers a client may use: several `vireo server`s on one etcd all
 * serve the same API, so a client holds their list and moves to the next
 * one when the one it uses stops answering. This module parses the list and
 * says which failures allow a request to be sent again elsewhere.
 */

/** `https://a:6443,https://b:6443` (or one URL) → the URLs, without trailing slashes; throws saying what is wrong. */
export function parseServerList(text: string | readonly string[]): string[] {
  const entries = (typeof text === 'string' ? text.split(',') : [...text]).map((s) => s.trim()).filter((s) => s !== '');
  if (entries.length === 0) throw new Error('no API server given: pass https://HOST:PORT, or several separated by commas');
  const servers: string[] = [];
  for (const entry of entries) {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new Error(`"${entry}" is not a URL: give each API server as https://HOST:PORT`);
    }
    if (url.protocol !== 'https:' || url.pathname.replace(/\/+$/, '') !== '' || url.search !== '' || url.hash !== '') {
      throw new Error(`"${entry}" is not an API server address: give each as https://HOST:PORT, with no path`);
    }
    const server = `${url.protocol}//${url.host}`;
    if (!servers.includes(server)) servers.push(server);
  }
  return servers;
}

/** Errors of a connection that never reached the server: nothing was sent, so any request may go to the next server. */
const unreachedCodes = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'ECONNECT_TIMEOUT']);

/** Errors of a connection that broke after the request may have been sent: only a read is safe to send again. */
const brokenCodes = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

/** Whether a request that failed with `err` may be sent to the next server. */
export function mayRetryElsewhere(err: unknown, method: string): boolean {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  if (unreachedCodes.has(code)) return true;
  const idempotent = method === 'GET' || method === 'HEAD';
  // Node says "socket hang up" (ECONNRESET) when the server died before answering.
  return idempotent && (brokenCodes.has(code) || (err instanceof Error && err.message === 'socket hang up'));
}

/** A 503 means the server did not do the request (its store is unreachable, or it is stopping): another server may. */
export function isUnavailableStatus(status: number): boolean {
  return status === 503;
}
