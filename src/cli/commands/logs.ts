/**
 * `vireo logs NAME [-f]`: the serial output the node keeps for a VMI
 * (`consolelog`). `-f` follows through the console stream rather than by
 * polling: the stream is opened first, the kept log printed, then the live
 * bytes, less those the log already held; it ends when the guest stops.
 * Nothing is sent to the guest.
 */
import { parseArgs } from 'node:util';
import type { WebSocket } from 'ws';
import { ApiError } from '../../api/errors.js';
import { errorFromResponse } from '../../client/index.js';
import { toBuffer } from '../../console/index.js';
import { CliError } from '../errors.js';
import type { Connection } from './connection.js';
import { clientFor, connectionFlags, connectionFor, subresourcePath } from './connection.js';
import { openStream } from './console.js';
import { explain, expectStatus } from './failures.js';

/**
 * The part of `live` (bytes the stream delivered while the log was being
 * read) that `logged` does not already end with: the longest prefix of
 * `live` that is a suffix of `logged` was printed with the log.
 */
export function unseenTail(logged: Buffer, live: Buffer): Buffer {
  for (let k = Math.min(logged.length, live.length); k > 0; k--) {
    if (logged.subarray(logged.length - k).equals(live.subarray(0, k))) return live.subarray(k);
  }
  return live;
}

async function fetchLog(connection: Connection, name: string): Promise<string> {
  const client = clientFor(connection);
  try {
    const response = await client.raw('GET', subresourcePath(connection, 'virtualmachineinstances', name, 'consolelog'));
    expectStatus(response, 200, errorFromResponse);
    return response.body;
  } catch (err) {
    throw await explain(err, { kind: 'VMI', name, namespace: connection.namespace, action: `read the serial log of VMI ${name}` }, client);
  } finally {
    client.close();
  }
}

/** Opens the console stream, or undefined when the guest is not running (then there is nothing to follow). */
async function openFollowStream(connection: Connection, name: string): Promise<WebSocket | undefined> {
  try {
    return await openStream(connection, name, 'console');
  } catch (err) {
    if (err instanceof ApiError && (err.reason === 'BadRequest' || err.reason === 'Conflict') && err.message.includes('is not running')) return undefined;
    throw err;
  }
}

export async function runLogs(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { ...connectionFlags, follow: { type: 'boolean', short: 'f' } }, allowPositionals: true, strict: true });
  const [name, extra] = positionals;
  if (name === undefined || extra !== undefined) throw new CliError('usage', 'usage: vireo logs NAME [-f] [-n NAMESPACE]');
  const connection = connectionFor(values);
  if (values.follow !== true) {
    process.stdout.write(await fetchLog(connection, name));
    return;
  }
  const ws = await openFollowStream(connection, name);
  if (ws === undefined) {
    process.stdout.write(await fetchLog(connection, name));
    return;
  }
  const early: Buffer[] = [];
  let live = false;
  ws.on('message', (data) => {
    if (live) process.stdout.write(toBuffer(data));
    else early.push(toBuffer(data));
  });
  const closed = new Promise<void>((resolve) => ws.once('close', () => { resolve(); }));
  ws.on('error', () => undefined);
  const stop = (): void => { ws.close(1000, 'logs -f interrupted'); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const log = await fetchLog(connection, name);
    process.stdout.write(log);
    process.stdout.write(unseenTail(Buffer.from(log, 'utf8'), Buffer.concat(early)));
    live = true;
    await closed;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    ws.terminate();
  }
}
