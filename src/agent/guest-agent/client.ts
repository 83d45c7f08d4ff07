/**
 * A client of the QEMU guest agent (qemu-ga) on the unix socket QEMU serves
 * for the VMI's `org.qemu.guest_agent.0` port.
 *
 * The channel is a byte pipe into the guest with no framing of its own and
 * no request ids: whatever an earlier client or an earlier agent left in it
 * may still arrive. So every session starts with `guest-sync-delimited`,
 * sent after a 0xFF byte (which resets the agent's JSON parser); the agent
 * answers with a 0xFF byte before its reply, and everything before that
 * byte, or a reply to an older sync, is dropped. Commands then run one at
 * a time, each reply being the answer to the one command in flight. A
 * timeout leaves the channel out of step, so it closes the session; the
 * caller connects again, which syncs again.
 */
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { randomInt } from 'node:crypto';
import type { Decoder } from '../qmp/decode.js';
import { GuestAgentError } from './errors.js';
import { errorBody, fsCount, fsFreezeStatus, guestFsInfo, guestHostName, guestInfo, guestLoad, guestOsInfo } from './schema.js';
import type { FsFreezeStatus, GuestFsInfo, GuestInfo, GuestLoad, GuestOsInfo } from './schema.js';

export interface GuestAgentConnectOptions {
  /** How long connecting and the first sync may take; 5 s by default (a guest without an agent never answers). */
  timeoutMs?: number;
  /** How long each command may take; 10 s by default. */
  commandTimeoutMs?: number;
  signal?: AbortSignal;
}

const sentinel = 0xff;
const newline = 0x0a;

interface InFlight {
  command: string;
  settle: (message: Record<string, unknown>) => void;
  fail: (error: GuestAgentError) => void;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function dial(path: string, signal: AbortSignal | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(path);
    const onAbort = (): void => { socket.destroy(); reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted')); };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new GuestAgentError('GuestAgentConnectFailed', `cannot open the guest agent channel ${path}: ${err.message}`, { cause: err }));
    });
  });
}

/** One synced session with the guest agent; see the module comment. */
export class GuestAgentClient {
  private readonly socket: Socket;
  private readonly commandTimeoutMs: number;
  private buffer: Buffer = Buffer.alloc(0);
  /** True until the sync's 0xFF arrives: bytes before it are stale. */
  private awaitingSentinel = false;
  private inFlight: InFlight | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closedWith: GuestAgentError | undefined;

  private constructor(socket: Socket, commandTimeoutMs: number) {
    this.socket = socket;
    this.commandTimeoutMs = commandTimeoutMs;
    socket.on('data', (chunk: Buffer) => { this.receive(chunk); });
    socket.on('error', (err) => { this.shutdown(new GuestAgentError('GuestAgentClosed', `the guest agent channel failed: ${err.message}`, { cause: err })); });
    socket.on('close', () => { this.shutdown(new GuestAgentError('GuestAgentClosed', 'the guest agent channel closed')); });
  }

  /** Opens the channel at `socketPath` and syncs with the agent; rejects with `GuestAgentTimeout` when no agent answers. */
  static async connect(socketPath: string, options: GuestAgentConnectOptions = {}): Promise<GuestAgentClient> {
    const socket = await dial(socketPath, options.signal);
    const client = new GuestAgentClient(socket, options.commandTimeoutMs ?? 10_000);
    const onAbort = (): void => { client.close(); };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await client.sync(options.timeoutMs ?? 5_000);
    } catch (err) {
      client.close();
      throw err;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
    return client;
  }

  /** True once the session has ended (a timeout, the channel closing, or `close()`). */
  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Ends the session; a command in flight rejects with `GuestAgentClosed`. The guest is not touched. */
  close(): void {
    this.shutdown(new GuestAgentError('GuestAgentClosed', 'the guest agent session was closed'));
    this.socket.destroy();
  }

  /** `guest-ping`: resolves when the agent answers. */
  async ping(): Promise<void> {
    await this.execute('guest-ping', undefined, (value) => value);
  }

  /** `guest-info`. */
  info(): Promise<GuestInfo> {
    return this.execute('guest-info', undefined, guestInfo);
  }

  /** `guest-get-osinfo`. */
  osInfo(): Promise<GuestOsInfo> {
    return this.execute('guest-get-osinfo', undefined, guestOsInfo);
  }

  /** `guest-get-host-name`. */
  async hostName(): Promise<string> {
    return (await this.execute('guest-get-host-name', undefined, guestHostName))['host-name'];
  }

  /** `guest-get-fsinfo`. */
  fsInfo(): Promise<GuestFsInfo> {
    return this.execute('guest-get-fsinfo', undefined, guestFsInfo);
  }

  /** `guest-get-load` (qemu-ga 10.0 and later). */
  load(): Promise<GuestLoad> {
    return this.execute('guest-get-load', undefined, guestLoad);
  }

  /** `guest-fsfreeze-status`. */
  fsFreezeStatus(): Promise<FsFreezeStatus> {
    return this.execute('guest-fsfreeze-status', undefined, fsFreezeStatus);
  }

  /** `guest-fsfreeze-freeze`: freezes the guest's filesystems; resolves with how many. */
  fsFreeze(options: { timeoutMs?: number } = {}): Promise<number> {
    return this.execute('guest-fsfreeze-freeze', undefined, fsCount, options.timeoutMs);
  }

  /** `guest-fsfreeze-thaw`: resolves with how many filesystems were thawed. */
  fsThaw(options: { timeoutMs?: number } = {}): Promise<number> {
    return this.execute('guest-fsfreeze-thaw', undefined, fsCount, options.timeoutMs);
  }

  /**
   * Runs `command` once the commands before it are answered, and checks
   * its reply with `decode`. A timeout closes the session (see the module
   * comment).
   */
  execute<T>(command: string, args: Record<string, unknown> | undefined, decode: Decoder<T>, timeoutMs = this.commandTimeoutMs): Promise<T> {
    const run = this.queue.then(() => this.send(command, args, timeoutMs, false)).then((message) => {
      if ('error' in message) {
        const error = errorBody(message.error, 'error');
        throw new GuestAgentError('GuestAgentCommandFailed', `the guest agent refused ${command}: ${error.desc} (${error.class})`, { errorClass: error.class });
      }
      try {
        return decode(message.return, 'return');
      } catch (err) {
        throw new GuestAgentError('GuestAgentProtocol', `the guest agent's reply to ${command} is not what the command returns: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** `guest-sync-delimited` with a fresh id, after the 0xFF that resets the agent's parser. */
  private async sync(timeoutMs: number): Promise<void> {
    const id = randomInt(1, 2 ** 31);
    const run = this.queue.then(() => this.send('guest-sync-delimited', { id }, timeoutMs, true));
    this.queue = run.catch(() => undefined);
    const reply = await run;
    if (reply.return !== id) throw new GuestAgentError('GuestAgentProtocol', `the guest agent answered the sync with ${JSON.stringify(reply)}, not id ${id}`);
  }

  private send(command: string, args: Record<string, unknown> | undefined, timeoutMs: number, sync: boolean): Promise<Record<string, unknown>> {
    if (this.closedWith !== undefined) return Promise.reject(new GuestAgentError('GuestAgentClosed', `cannot run ${command}: ${this.closedWith.message}`, { cause: this.closedWith }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.inFlight = undefined;
        reject(new GuestAgentError('GuestAgentTimeout', `the guest agent did not answer ${command} within ${timeoutMs} ms`));
        // A late reply would be taken for the next command's: this session is done.
        this.close();
      }, timeoutMs);
      const syncId = sync ? args?.id : undefined;
      this.inFlight = {
        command,
        settle: (message) => {
          // A reply to an older sync (left in the channel) is stale: wait for the next 0xFF.
          if (sync && message.return !== syncId && !('error' in message)) {
            this.awaitingSentinel = true;
            return;
          }
          clearTimeout(timer);
          this.inFlight = undefined;
          resolve(message);
        },
        fail: (error) => {
          clearTimeout(timer);
          this.inFlight = undefined;
          reject(error);
        },
      };
      const message = JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args });
      if (sync) {
        this.awaitingSentinel = true;
        this.buffer = Buffer.alloc(0);
        this.socket.write(Buffer.concat([Buffer.from([sentinel]), Buffer.from(`${message}\n`)]));
      } else {
        this.socket.write(`${message}\n`);
      }
    });
  }

  private receive(chunk: Buffer): void {
    let data = chunk;
    if (this.awaitingSentinel) {
      const at = data.lastIndexOf(sentinel);
      if (at < 0) return;
      this.awaitingSentinel = false;
      this.buffer = Buffer.alloc(0);
      data = data.subarray(at + 1);
    }
    this.buffer = Buffer.concat([this.buffer, data]);
    for (let end = this.buffer.indexOf(newline); end >= 0 && !this.awaitingSentinel; end = this.buffer.indexOf(newline)) {
      const line = this.buffer.subarray(0, end).toString('utf8').trim();
      this.buffer = this.buffer.subarray(end + 1);
      if (line === '') continue;
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        this.inFlight?.fail(new GuestAgentError('GuestAgentProtocol', `the guest agent sent a line that is not JSON: ${line.slice(0, 80)}`));
        this.close();
        return;
      }
      const inFlight = this.inFlight;
      // Replies nobody waits for (a command that timed out earlier) are dropped.
      if (inFlight === undefined || !isRecord(message)) continue;
      inFlight.settle(message);
    }
    if (this.awaitingSentinel && this.buffer.length > 0) {
      // A stale sync reply was dropped; look for the next 0xFF in what followed it.
      const rest = this.buffer;
      this.buffer = Buffer.alloc(0);
      this.receive(rest);
    }
  }

  private shutdown(error: GuestAgentError): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = error;
    this.inFlight?.fail(error);
  }
}
