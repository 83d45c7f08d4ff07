/**
 * `vireo ssh [USER@]vm|vmi/NAME[.NAMESPACE]`: the local OpenSSH client
 * connected to the guest's SSH server through the `portforward`
 * subresource, as virtctl's `ssh --local-ssh` does: ssh runs with a
 * `ProxyCommand` of `vireo port-forward --stdio`, and the guest's host key
 * is remembered under the VM's name (`HostKeyAlias`), in
 * `~/.ssh/kube_known_hosts` unless `--known-hosts` names another file.
 */
import { spawn } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CliError } from '../errors.js';
import { connectionFor, connectionFlags } from './connection.js';
import { parseForwardTarget } from './port-forward.js';

const usage = 'usage: vireo ssh [-i IDENTITY] [-l USER] [-p PORT] [-c COMMAND] [--known-hosts FILE] [-t SSH-OPTION]... [USER@]vm|vmi/NAME[.NAMESPACE]';

/** Single-quotes `word` for the shell ssh runs its ProxyCommand with. */
function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The ssh arguments for a session; exported for tests. */
export function sshArguments(args: string[], cliPath: string, env: { home: string }): string[] {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...connectionFlags,
      'identity-file': { type: 'string', short: 'i' },
      username: { type: 'string', short: 'l' },
      port: { type: 'string', short: 'p' },
      command: { type: 'string', short: 'c' },
      'known-hosts': { type: 'string' },
      'local-ssh-opts': { type: 'string', short: 't', multiple: true },
    },
    allowPositionals: true,
    strict: true,
  });
  const [destination, extra] = positionals;
  if (destination === undefined || extra !== undefined) throw new CliError('usage', usage);
  const at = destination.lastIndexOf('@');
  const user = at < 0 ? values.username : destination.slice(0, at);
  const target = parseForwardTarget(at < 0 ? destination : destination.slice(at + 1));
  const port = values.port ?? '22';
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw new CliError('usage', `--port ${port} is not a TCP port`);
  const connection = connectionFor({ ...values, ...(target.namespace === undefined ? {} : { namespace: target.namespace }) });
  const type = target.parent === 'virtualmachines' ? 'vm' : 'vmi';
  const where = `${type}/${target.name}.${connection.namespace}`;
  const proxy = [process.execPath, cliPath, 'port-forward', '--stdio', '--kubeconfig', connection.kubeconfig, where, port].map(shellQuote).join(' ');
  return [
    '-o', `ProxyCommand=${proxy}`,
    '-o', `HostKeyAlias=${where}`,
    '-o', `UserKnownHostsFile=${values['known-hosts'] ?? join(env.home, '.ssh', 'kube_known_hosts')}`,
    ...(values['identity-file'] === undefined ? [] : ['-i', values['identity-file']]),
    ...(user === undefined || user === '' ? [] : ['-l', user]),
    ...(values['local-ssh-opts'] ?? []),
    // The host name is only a label: the ProxyCommand makes the connection.
    `${target.name}.${connection.namespace}`,
    ...(values.command === undefined ? [] : [values.command]),
  ];
}

export async function runSsh(args: string[]): Promise<void> {
  const cliPath = fileURLToPath(new URL('../main.js', import.meta.url));
  const sshArgs = sshArguments(args, cliPath, { home: homedir() });
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn('ssh', sshArgs, { stdio: 'inherit' });
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? new CliError('not-found', 'vireo ssh runs the local OpenSSH client, and ssh is not installed: install it (apt-get install openssh-client)', err) : err);
    });
    child.once('close', (status, signal) => { resolve(status ?? (signal === null ? 1 : 128)); });
  });
  // ssh's own exit status (the remote command's, or 255 for ssh's errors) is this command's.
  if (code !== 0) process.exitCode = code;
}
