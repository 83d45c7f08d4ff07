/**
 * An interactive serial-console session: the user's input goes to the guest
 * until the escape key (Ctrl+], like virtctl and telnet), the guest's output
 * goes to the user. With piped input, the session outlives the input until
 * the guest has been quiet for a while, so `echo cmd | vireo console vm`
 * shows the command's output.
 */
import { Transform } from 'node:stream';
import type { Readable, TransformCallback, Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import { bridge, closeSocket, normalClosure } from './bridge.js';

/** Ctrl+] */
export const escapeByte = 0x1d;

/** Passes bytes through until the escape byte, then ends (the bytes after it are dropped). */
export class EscapeFilter extends Transform {
  private escaped = false;

  /** True once the escape byte was seen. */
  get sawEscape(): boolean {
    return this.escaped;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.escaped) { callback(); return; }
    const at = chunk.indexOf(escapeByte);
    if (at < 0) { callback(null, chunk); return; }
    this.escaped = true;
    if (at > 0) this.push(chunk.subarray(0, at));
    this.push(null);
    callback();
  }
}

export interface ConsoleSessionOptions {
  input: Readable;
  output: Writable;
  /**
   * After the input ends without the escape key (piped input), keep
   * printing the guest's output until it has been quiet this long.
   */
  lingerMs: number;
}

/** Why the session ended. */
export type ConsoleSessionEnd = 'escape' | 'input-ended' | 'closed-by-server';

export async function runConsoleSession(ws: WebSocket, options: ConsoleSessionOptions): Promise<ConsoleSessionEnd> {
  const filter = new EscapeFilter();
  options.input.pipe(filter);
  let ending: ConsoleSessionEnd = 'closed-by-server';
  let quiet: NodeJS.Timeout | undefined;
  const closeWhenQuiet = (): void => {
    if (quiet !== undefined) clearTimeout(quiet);
    quiet = setTimeout(() => { closeSocket(ws, normalClosure, 'input ended'); }, options.lingerMs);
  };
  filter.once('end', () => {
    if (filter.sawEscape) {
      ending = 'escape';
      closeSocket(ws, normalClosure, 'escape key');
      return;
    }
    ending = 'input-ended';
    ws.on('message', closeWhenQuiet);
    closeWhenQuiet();
  });
  const result = await bridge(ws, { input: filter, output: options.output }, { closeOnInputEnd: false });
  if (quiet !== undefined) clearTimeout(quiet);
  options.input.unpipe(filter);
  if (result.error !== undefined && ending === 'closed-by-server') throw result.error;
  return ending;
}
