/**
 * `vireo vnc NAME`: a local TCP port a VNC viewer connects to, proxied to
 * the guest's VNC display (virtctl's `vnc --proxy-only`). Runs until
 * interrupted; every viewer connection is its own session.
 */
import { parseArgs } from 'node:util';
import { ApiError } from '../../api/errors.js';
import { stringAt } from '../../api/kinds/read.js';
import { resources } from '../../client/index.js';
import { startStreamProxy } from '../../console/index.js';
import { CliError } from '../errors.js';
import { clientFor, connectionFlags, connectionFor } from './connection.js';
import { openStream } from './console.js';
import { explain } from './failures.js';

export async function runVnc(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...connectionFlags, port: { type: 'string' }, address: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const [name, extra] = positionals;
  if (name === undefined || extra !== undefined) throw new CliError('usage', 'usage: vireo vnc NAME [--address 127.0.0.1] [--port PORT] [-n NAMESPACE]');
  const port = Number(values.port ?? '0');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError('usage', `--port ${values.port ?? ''} is not a TCP port (0 picks a free one)`);
  const host = values.address ?? '127.0.0.1';
  const connection = connectionFor(values);
  const client = clientFor(connection);
  try {
    // Check once up front, so a typo fails now rather than when a viewer connects.
    const vmi = await client.get(resources.virtualMachineInstances, connection.namespace, name);
    const phase = stringAt(vmi, 'status', 'phase') ?? '';
    if (phase !== 'Running') throw new ApiError('Conflict', `VMI is not running (phase ${phase === '' ? 'unset' : phase}): wait until it is Running, then run vireo vnc ${name} again`);
  } catch (err) {
    throw err instanceof ApiError && err.reason === 'Conflict' ? err : await explain(err, { kind: 'VMI', name, namespace: connection.namespace, action: `open the VNC display of VMI ${name}` }, client);
  } finally {
    client.close();
  }
  const proxy = await startStreamProxy({
    host,
    port,
    dial: () => openStream(connection, name, 'vnc'),
    onError: (err) => { process.stderr.write(`vireo: a VNC viewer could not be connected: ${err instanceof Error ? err.message : String(err)}\n`); },
  }).catch((err: unknown) => {
    throw new CliError('unavailable', `cannot listen on ${host}:${port} for VNC viewers: ${err instanceof Error ? err.message : String(err)}`, err);
  });
  const where = `${proxy.address.address}:${proxy.address.port}`;
  process.stdout.write(`VNC proxy for ${name} listening on ${where}: point a VNC viewer at it (e.g. vncviewer ${proxy.address.address}::${proxy.address.port}). Press Ctrl+C to stop.\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void proxy.close().then(resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
