/**
 * `vireo port-forward TYPE/NAME[.NAMESPACE] [LOCAL:]REMOTE…`: local TCP
 * ports forwarded to ports of a guest through the `portforward` WebSocket
 * subresource, as virtctl's `port-forward` does; each local connection is
 * its own stream. With `--stdio` the one port is bridged to this process's
 * stdin and stdout instead, for ssh's `ProxyCommand` (`vireo ssh` uses it).
 */
import { parseArgs } from 'node:util';
import type { WebSocket } from 'ws';
import { ApiError } from '../../api/errors.js';
import { stringAt } from '../../api/kinds/read.js';
import { resources } from '../../client/index.js';
import { bridge, dialStream, startStreamProxy } from '../../console/index.js';
import type { StreamProxy } from '../../console/index.js';
import { CliError } from '../errors.js';
import type { Connection } from './connection.js';
import { clientFor, connectionFlags, connectionFor, subresourcePath } from './connection.js';
import { explain } from './failures.js';

const usage = 'usage: vireo port-forward [--address 127.0.0.1] [--stdio] vm|vmi/NAME[.NAMESPACE] [LOCAL:]REMOTE[/tcp]...';

/** What `vm/NAME.NS` names. */
export interface ForwardTarget {
  parent: 'virtualmachines' | 'virtualmachineinstances';
  name: string;
  /** From `.NAMESPACE`; else the connection's. */
  namespace: string | undefined;
}

/** Parses virtctl's `TYPE/NAME[.NAMESPACE]` (TYPE: vm, vmi, virtualmachine, virtualmachineinstance). */
export function parseForwardTarget(text: string): ForwardTarget {
  const slash = text.indexOf('/');
  const type = slash < 0 ? '' : text.slice(0, slash).toLowerCase();
  const rest = slash < 0 ? '' : text.slice(slash + 1);
  const parent = type === 'vm' || type === 'virtualmachine' ? 'virtualmachines' : type === 'vmi' || type === 'virtualmachineinstance' ? 'virtualmachineinstances' : undefined;
  if (parent === undefined || rest === '') throw new CliError('usage', `"${text}" does not name a VM or VMI: write vm/NAME or vmi/NAME (optionally NAME.NAMESPACE)`);
  const dot = rest.indexOf('.');
  return dot < 0 ? { parent, name: rest, namespace: undefined } : { parent, name: rest.slice(0, dot), namespace: rest.slice(dot + 1) };
}

/** One `[LOCAL:]REMOTE[/tcp]`: the local port (0 for a free one) and the guest's. */
export function parsePortSpec(text: string): { local: number; remote: number } {
  const [ports = '', protocol, extra] = text.split('/');
  if (extra !== undefined || (protocol !== undefined && protocol !== 'tcp')) {
    throw new CliError('usage', protocol === 'udp' ? `${text}: UDP ports cannot be forwarded; forward a TCP port` : `${text} is not a port to forward: write [LOCAL:]REMOTE, e.g. 8080:80`);
  }
  const parts = ports.split(':');
  const numbers = parts.map((p) => (/^[0-9]{1,5}$/.test(p) ? Number(p) : NaN));
  const [first, second] = numbers;
  const valid = (n: number | undefined, allowZero: boolean): n is number => n !== undefined && Number.isInteger(n) && n >= (allowZero ? 0 : 1) && n <= 65535;
  if (parts.length === 1 && valid(first, false)) return { local: first, remote: first };
  if (parts.length === 2 && valid(first, true) && valid(second, false)) return { local: first, remote: second };
  throw new CliError('usage', `${text} is not a port to forward: write [LOCAL:]REMOTE with ports from 1 to 65535 (LOCAL 0 picks a free port), e.g. 8080:80`);
}

function dialPort(connection: Connection, target: ForwardTarget, port: number): Promise<WebSocket> {
  return dialStream({ server: connection.server, token: connection.token, caCert: connection.caCert, path: subresourcePath(connection, target.parent, target.name, `portforward/${port}`) });
}

/** The first stream of a session, with the CLI's error messages (a missing VM/VMI, not running…). */
async function firstStream(connection: Connection, target: ForwardTarget, port: number): Promise<WebSocket> {
  try {
    return await dialPort(connection, target, port);
  } catch (err) {
    const client = clientFor(connection);
    try {
      throw await explain(err, { kind: target.parent === 'virtualmachines' ? 'VM' : 'VMI', name: target.name, namespace: connection.namespace, action: `forward port ${port} of ${target.name}` }, client);
    } finally {
      client.close();
    }
  }
}

/** Throws the CLI's error when the guest is missing or not running. */
async function checkRunning(connection: Connection, target: ForwardTarget): Promise<void> {
  const client = clientFor(connection);
  const kind = target.parent === 'virtualmachines' ? 'VM' : 'VMI';
  try {
    if (kind === 'VM') await client.get(resources.virtualMachines, connection.namespace, target.name);
    // A VM's ports are its VMI's (same name).
    const vmi = await client.get(resources.virtualMachineInstances, connection.namespace, target.name);
    const phase = stringAt(vmi, 'status', 'phase') ?? '';
    if (phase !== 'Running') throw new ApiError('Conflict', `VMI is not running (phase ${phase === '' ? 'unset' : phase}): wait until it is Running, then run vireo port-forward again`);
  } catch (err) {
    throw err instanceof ApiError && err.reason === 'Conflict' ? err : await explain(err, { kind: 'VMI', name: target.name, namespace: connection.namespace, action: `forward ports of ${kind} ${target.name}` }, client);
  } finally {
    client.close();
  }
}

export async function runPortForward(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { ...connectionFlags, address: { type: 'string' }, stdio: { type: 'boolean' } }, allowPositionals: true, strict: true });
  const [targetText, ...portTexts] = positionals;
  if (targetText === undefined || portTexts.length === 0) throw new CliError('usage', usage);
  const target = parseForwardTarget(targetText);
  const ports = portTexts.map(parsePortSpec);
  const connection = connectionFor({ ...values, ...(target.namespace === undefined ? {} : { namespace: target.namespace }) });
  if (values.stdio === true) {
    const [only, more] = ports;
    if (only === undefined || more !== undefined) throw new CliError('usage', '--stdio forwards exactly one port: vireo port-forward --stdio vm/NAME PORT');
    const ws = await firstStream(connection, target, only.remote);
    // The end of stdin cannot be passed on (the stream has no half-close): the session lasts until the guest closes, or ssh ends this process.
    await bridge(ws, { input: process.stdin, output: process.stdout }, { endOutput: true, closeOnInputEnd: false });
    process.stdin.destroy();
    return;
  }
  const host = values.address ?? '127.0.0.1';
  // Checked once up front, so a typo or a stopped guest fails now, not at the first connection.
  await checkRunning(connection, target);
  const proxies: StreamProxy[] = [];
  try {
    for (const port of ports) {
      const proxy = await startStreamProxy({
        host,
        port: port.local,
        dial: () => dialPort(connection, target, port.remote),
        onError: (err) => { process.stderr.write(`vireo: a connection to port ${port.remote} of ${target.name} failed: ${err instanceof Error ? err.message : String(err)}\n`); },
      }).catch((err: unknown) => {
        throw new CliError('unavailable', `cannot listen on ${host}:${port.local}: ${err instanceof Error ? err.message : String(err)}`, err);
      });
      proxies.push(proxy);
      process.stdout.write(`Forwarding from ${proxy.address.address}:${proxy.address.port} -> ${port.remote}\n`);
    }
  } catch (err) {
    await Promise.all(proxies.map((p) => p.close()));
    throw err;
  }
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void Promise.all(proxies.map((p) => p.close())).then(() => { resolve(); });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
