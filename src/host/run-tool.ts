/**
 * Runs the host tools the agent and the storage code prepare disks with (`qemu-img`,
 * `genisoimage`): argument arrays, never a shell, cancellable, and an error
 * that carries the tool's own message.
 */
import { execFile } from 'node:child_process';

/** A host tool that failed or could not run; `message` ends with the tool's own last stderr line. */
export class ToolError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ToolError';
  }
}

/** How a tool runs. */
export interface RunToolOptions {
  signal: AbortSignal;
  cwd?: string;
  /** Default 120 s: a qemu-img or genisoimage run that takes longer is stuck. */
  timeoutMs?: number;
}

/** Runs `command args…`; resolves with its stdout, rejects with a {@link ToolError}. */
export function runTool(command: string, args: readonly string[], options: RunToolOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { signal: options.signal, cwd: options.cwd, timeout: options.timeoutMs ?? 120_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve(stdout);
          return;
        }
        const detail = lastLine(stderr) || err.message;
        reject(new ToolError(`${command} failed: ${detail}`, stderr, { cause: err }));
      },
    );
  });
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines[lines.length - 1] ?? '';
}
