/**
 * Runs one CNI plugin binary as the spec says: found by its `type` in the
 * CNI path, parameters in `CNI_*` environment variables, the config on
 * stdin, the result (or the spec's error report) on stdout. A call that
 * outlives its timeout, or whose caller aborts, is killed. Optionally the
 * plugin runs inside another network namespace (`ip netns exec`), so what
 * it makes on "the host" (a bridge, a macvlan master's child) lands there.
 */
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { CniError } from './errors.js';
import { decodeErrorReport } from './result.js';

export type CniCommand = 'ADD' | 'CHECK' | 'DEL' | 'VERSION';

/** One plugin call. */
export interface PluginCall {
  command: CniCommand;
  type: string;
  /** The JSON the plugin reads on stdin. */
  input: Record<string, unknown>;
  containerId?: string;
  /** A netns path, e.g. `/run/netns/NAME`. */
  netns?: string;
  ifName?: string;
  /** `CNI_ARGS`: `KEY=VALUE;KEY=VALUE`. */
  args?: string;
  /** The network the call is for, in error messages. */
  network?: string;
}

/** Where and how plugins run; compiled once by the runtime. */
export interface PluginExecOptions {
  /** Directories searched in order for the plugin binary (`CNI_PATH`). */
  cniPath: readonly string[];
  /** Run plugins inside this named network namespace instead of the caller's. */
  pluginNetns: string | undefined;
  timeoutMs: number;
  signal: AbortSignal;
}

const maxOutput = 4 * 1024 * 1024;

/** Runs the plugin; resolves with its parsed stdout (undefined when it wrote nothing), rejects with a {@link CniError}. */
export async function execPlugin(call: PluginCall, options: PluginExecOptions): Promise<unknown> {
  const binary = await findPlugin(call.type, options.cniPath, call.network);
  const env: NodeJS.ProcessEnv = { ...withoutCniVariables(process.env), CNI_COMMAND: call.command, CNI_PATH: options.cniPath.join(':') };
  if (call.containerId !== undefined) env.CNI_CONTAINERID = call.containerId;
  if (call.netns !== undefined) env.CNI_NETNS = call.netns;
  if (call.ifName !== undefined) env.CNI_IFNAME = call.ifName;
  if (call.args !== undefined) env.CNI_ARGS = call.args;
  const [command, args] = options.pluginNetns === undefined ? [binary, []] : ['ip', ['netns', 'exec', options.pluginNetns, binary]];
  const { code, stdout, stderr } = await run(command, args, env, JSON.stringify(call.input), call, options);

  const text = stdout.trim();
  let parsed: unknown;
  if (text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  if (code === 0) {
    if (text !== '' && parsed === undefined) {
      throw new CniError('InvalidResult', `${prefix(call)}plugin ${call.type} ${call.command} wrote output that is not JSON: ${clip(text)}`, pluginContext(call));
    }
    return parsed;
  }
  const report = decodeErrorReport(parsed);
  if (report !== undefined) {
    const details = report.details === undefined ? '' : ` (${report.details})`;
    throw new CniError('PluginFailed', `${prefix(call)}plugin ${call.type} failed: ${report.msg}${details}`, { ...pluginContext(call), report });
  }
  const said = lastLine(stderr) || lastLine(stdout) || `exited with code ${code}`;
  throw new CniError('PluginFailed', `${prefix(call)}plugin ${call.type} failed: ${said}`, pluginContext(call));
}

/** The first executable `type` in the CNI path. */
async function findPlugin(type: string, cniPath: readonly string[], network: string | undefined): Promise<string> {
  for (const dir of cniPath) {
    const candidate = join(dir, type);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory; try the next.
    }
  }
  throw new CniError(
    'PluginNotFound',
    `${network === undefined ? '' : `network ${network}: `}CNI plugin "${type}" not found in the CNI path ${cniPath.join(':')}: install it (Debian: containernetworking-plugins) or fix the plugin "type"`,
    { ...(network === undefined ? {} : { network }), plugin: type },
  );
}

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, stdin: string, call: PluginCall, options: PluginExecOptions): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    if (options.signal.aborted) {
      reject(abortError(options.signal));
      return;
    }
    const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (action: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal.removeEventListener('abort', onAbort);
      action();
    };
    const onAbort = (): void => {
      child.kill('SIGKILL');
      finish(() => { reject(abortError(options.signal)); });
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(() => {
        reject(new CniError('PluginTimeout', `${prefix(call)}plugin ${call.type} ${call.command} did not finish within ${options.timeoutMs} ms and was killed`, pluginContext(call)));
      });
    }, options.timeoutMs);
    options.signal.addEventListener('abort', onAbort, { once: true });
    const collect = (into: Buffer[]) => (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxOutput) {
        child.kill('SIGKILL');
        finish(() => { reject(new CniError('InvalidResult', `${prefix(call)}plugin ${call.type} wrote more than ${maxOutput} bytes`, pluginContext(call))); });
        return;
      }
      into.push(chunk);
    };
    child.stdout.on('data', collect(stdout));
    child.stderr.on('data', collect(stderr));
    child.stdin.on('error', () => undefined); // A plugin that exits without reading stdin is judged by its exit, not by EPIPE.
    child.on('error', (err) => {
      finish(() => { reject(new CniError('PluginFailed', `${prefix(call)}plugin ${call.type} could not run: ${err.message}`, { ...pluginContext(call), cause: err })); });
    });
    child.on('close', (code, signal) => {
      finish(() => {
        resolve({
          code: code ?? (signal === null ? 1 : 128),
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
        });
      });
    });
    child.stdin.end(stdin);
  });
}

function withoutCniVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('CNI_')));
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const err = new Error('the CNI operation was aborted');
  err.name = 'AbortError';
  return err;
}

function pluginContext(call: PluginCall): { network?: string; plugin: string } {
  return call.network === undefined ? { plugin: call.type } : { network: call.network, plugin: call.type };
}

function prefix(call: PluginCall): string {
  return call.network === undefined ? '' : `network ${call.network}: `;
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines[lines.length - 1] ?? '';
}

function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}
