/**
 * Runs `nft` on this node, or inside a network namespace (`ip netns exec`),
 * with a ruleset on stdin: argument arrays, never a shell, cancellable,
 * and an error carrying nft's own message.
 */
import { spawn } from 'node:child_process';

/** Where nft runs. */
export interface NftTarget {
  /** A named network namespace (`ip netns add`) to run nft in; the current one when unset. */
  netns?: string;
}

/** nft refused the input or could not run; `message` carries nft's own lines. */
export class NftError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'NftError';
  }
}

function command(target: NftTarget, args: readonly string[]): [string, string[]] {
  return target.netns === undefined ? ['nft', [...args]] : ['ip', ['netns', 'exec', target.netns, 'nft', ...args]];
}

/** Runs `nft args…` with `input` on stdin; resolves with stdout. */
export function runNft(target: NftTarget, args: readonly string[], options: { input?: string; signal?: AbortSignal } = {}): Promise<string> {
  const [file, argv] = command(target, args);
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'], ...(options.signal === undefined ? {} : { signal: options.signal }) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error) => { reject(new NftError(`nft could not run: ${error.message}; install the Debian package nftables`, '')); });
    child.on('close', (code) => {
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new NftError(`nft ${args.join(' ')} failed (exit ${String(code)}): ${stderr.trim().split('\n').slice(0, 6).join(' | ')}`, stderr));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** Applies a ruleset atomically (`nft -f -`: one transaction). */
export async function applyRuleset(target: NftTarget, text: string, signal?: AbortSignal): Promise<void> {
  await runNft(target, ['-f', '-'], signal === undefined ? { input: text } : { input: text, signal });
}

/** Deletes `inet <table>` and `bridge <table>`; no error when they are already gone. */
export async function deleteTable(target: NftTarget, table: string): Promise<void> {
  await applyRuleset(target, ['inet', 'bridge'].map((family) => `table ${family} ${table} {}\ndelete table ${family} ${table}\n`).join(''));
}
