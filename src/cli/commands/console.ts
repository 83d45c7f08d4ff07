/**
 * `vireo console NAME`: the guest's serial console in this terminal, raw
 * (keys go to the guest, Ctrl+C included) until Ctrl+], as virtctl does.
 * With piped input it sends the input, then prints the guest's output until
 * the guest has been quiet for `--linger` seconds.
 */
import { parseArgs } from 'node:util';
import type { WebSocket } from 'ws';
import { dialStream, runConsoleSession } from '../../console/index.js';
import type { ConsoleSessionEnd } from '../../console/index.js';
import { CliError } from '../errors.js';
import type { Connection } from './connection.js';
import { clientFor, connectionFlags, connectionFor, subresourcePath } from './connection.js';
import { explain } from './failures.js';

/** Opens a console or VNC stream of VMI `name`, with the CLI's error messages. */
export async function openStream(connection: Connection, name: string, kind: 'console' | 'vnc'): Promise<WebSocket> {
  try {
    return await dialStream({ server: connection.server, token: connection.token, caCert: connection.caCert, path: subresourcePath(connection, 'virtualmachineinstances', name, kind) });
  } catch (err) {
    const client = clientFor(connection);
    try {
      throw await explain(err, { kind: 'VMI', name, namespace: connection.namespace, action: `open the ${kind} of VMI ${name}` }, client);
    } finally {
      client.close();
    }
  }
}

export async function runConsole(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { ...connectionFlags, linger: { type: 'string' } }, allowPositionals: true, strict: true });
  const [name, extra] = positionals;
  if (name === undefined || extra !== undefined) throw new CliError('usage', 'usage: vireo console NAME [--linger SECONDS] [-n NAMESPACE]');
  const linger = Number(values.linger ?? '1');
  if (!Number.isFinite(linger) || linger < 0) throw new CliError('usage', `--linger ${values.linger ?? ''} is not valid: give the seconds of quiet to wait for after piped input ends`);
  const ws = await openStream(connectionFor(values), name, 'console');
  const stdin = process.stdin;
  const raw = stdin.isTTY;
  // Raw before the greeting: keys typed right after it must already go to the guest, Ctrl+C included.
  if (raw) stdin.setRawMode(true);
  process.stderr.write(`Successfully connected to ${name} console. Press Ctrl+] to exit console.${raw ? '\r\n' : '\n'}`);
  let end: ConsoleSessionEnd;
  try {
    end = await runConsoleSession(ws, { input: stdin, output: process.stdout, lingerMs: linger * 1000 });
  } catch (err) {
    throw new CliError('unavailable', `the console connection to ${name} failed: ${err instanceof Error ? err.message : String(err)}; run vireo console ${name} again to reconnect`, err);
  } finally {
    if (raw) stdin.setRawMode(false);
    // stdin would keep the process alive waiting for input nobody reads any more.
    stdin.destroy();
  }
  if (end === 'closed-by-server') process.stderr.write(`\nThe console of ${name} was closed by the server (the guest stopped, or the server is shutting down).\n`);
}
