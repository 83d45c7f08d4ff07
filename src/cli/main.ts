#!/usr/bin/env node
/**
 * The `vireo` command. Subcommands:
 *   vireo server --data-dir DIR [--listen HOST:PORT] [--log-level LEVEL]
 *   vireo up                          (server with the defaults, for a newcomer)
 *   vireo kubeconfig [--data-dir DIR]
 *   vireo start|stop|restart|pause|unpause|soft-reboot|reset|console|vnc|logs …  (src/cli/commands)
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { isLogLevel } from '../log/logger.js';
import { runServer } from './server-command.js';
import { CliError, exitCodeOf } from './errors.js';
import { isVmCommand, runVmCommand, vmCommandsUsage } from './commands/index.js';

const usage = `Usage: vireo <command> [flags]

Commands:
  up                     Run Vireo on this machine with its data in ~/.vireo (the quick start).
  server                 Run the Vireo server.
      --data-dir DIR     Where state, certificates and the kubeconfig live (required).
      --listen HOST:PORT Address to serve HTTPS on (default 127.0.0.1:6443).
      --log-level LEVEL  debug, info, warn or error (default info).
  kubeconfig             Print the kubeconfig of a server.
      --data-dir DIR     The server's data directory (default ~/.vireo).
  help                   Show this help.
${vmCommandsUsage}`;

export const defaultDataDir = join(homedir(), '.vireo');

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'up':
    case 'server': {
      const { values } = parseArgs({
        args: rest,
        options: { 'data-dir': { type: 'string' }, listen: { type: 'string' }, 'log-level': { type: 'string' } },
        strict: true,
      });
      const dataDir = values['data-dir'] ?? (command === 'up' ? defaultDataDir : undefined);
      if (dataDir === undefined) throw new CliError('usage', 'vireo server needs --data-dir DIR: the directory for its state, certificates and kubeconfig');
      const level = values['log-level'] ?? 'info';
      if (!isLogLevel(level)) throw new CliError('usage', `--log-level ${level} is not valid: use debug, info, warn or error`);
      await runServer({ dataDir, listen: values.listen ?? '127.0.0.1:6443', logLevel: level, newcomer: command === 'up' });
      return;
    }
    case 'kubeconfig': {
      const { values } = parseArgs({ args: rest, options: { 'data-dir': { type: 'string' } }, strict: true });
      const path = join(values['data-dir'] ?? defaultDataDir, 'kubeconfig');
      try {
        process.stdout.write(readFileSync(path, 'utf8'));
      } catch (err) {
        throw new CliError('not-found', `no kubeconfig at ${path}: start the server first (vireo up, or vireo server --data-dir DIR)`, err);
      }
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage);
      return;
    default:
      if (isVmCommand(command)) { await runVmCommand(command, rest); return; }
      throw new CliError('usage', `unknown command "${command}": run "vireo help" for the list of commands`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`vireo: ${message}\n`);
  process.exit(exitCodeOf(err));
});
