/**
 * A QMP client on QEMU's unix socket. Readiness is QEMU's greeting; every
 * message passes the schema in `schema.ts` before it becomes typed; replies
 * are matched to commands by `id`, and events go to listeners.
 *
 * QEMU serves one QMP client per socket at a time: a second client connects
 * but gets no greeting until the first leaves, which shows here as a
 * `QmpTimeout` naming that cause.
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { DecodeError } from './decode.js';
import { QmpError } from './errors.js';
import { decodeEvent, errorBody, greeting as greetingDecoder, returnDecoder } from './schema.js';
import type { QmpArgs, QmpCommandName, QmpEvent, QmpGreeting, QmpReturn } from './schema.js';

export interface QmpConnectOptions {
  /** Aborts connecting (the client, once returned, lives until `close()`). */
  signal?: AbortSignal;
  /** How long to wait for the socket to appear and QEMU to greet; 10 s by default. */
  timeoutMs?: number;
  /** How long each command may take; 30 s by default. */
  commandTimeoutMs?: number;
}

/** The arguments `execute` takes after the command name: none, optional or required. */
export type QmpArgsParam<C extends QmpCommandName> = undefined extends QmpArgs<C> ? [args?: Exclude<QmpArgs<C>, undefined>] : [args: QmpArgs<C>];

interface Pending {
  command: QmpCommandName;
  settle: (message: Record<string, unknown> | undefined) => void;
  reject: (error: QmpError) => void;
  timer: NodeJS.Timeout;
}

const retryDelayMs = 20;
const retriable = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

function errorCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function dial(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(path);
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Connects, retrying while the socket does not exist yet or refuses (QEMU still starting). */
async function dialUntil(path: string, deadline: number, signal: AbortSignal | undefined): Promise<Socket> {
  for (;;) {
    signal?.throwIfAborted();
    try {
      return await dial(path);
    } catch (err) {
      const code = errorCode(err);
      if (code === undefined || !retriable.has(code) || Date.now() >= deadline) {
        throw new QmpError('QmpConnectFailed', `cannot connect to the QMP socket ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    }
    await sleep(retryDelayMs, undefined, signal === undefined ? {} : { signal });
  }
}

/** Why `signal` aborted, as an Error (an AbortSignal's default reason is a DOMException, itself an Error). */
function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error(`aborted: ${JSON.stringify(reason) ?? 'no reason'}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A connected QMP session. */
export class QmpClient {
  /** QEMU's greeting: its version and capabilities. */
  readonly greeting: QmpGreeting;
  private readonly socket: Socket;
  private readonly emitter = new EventEmitter();
  private readonly pending = new Map<number, Pending>();
  private readonly commandTimeoutMs: number;
  private nextId = 1;
  private buffer = '';
  private closedWith: { error: Error | undefined } | undefined;

  private constructor(socket: Socket, greeting: QmpGreeting, rest: string, commandTimeoutMs: number) {
    this.socket = socket;
    this.greeting = greeting;
    this.commandTimeoutMs = commandTimeoutMs;
    socket.on('data', (chunk: string) => { this.receive(chunk); });
    socket.on('error', (err) => {
      // QEMU exiting (quit, poweroff, a kill) resets the connection when bytes were still in flight: that is an ordinary close.
      const code = errorCode(err);
      this.shutdown(code === 'ECONNRESET' || code === 'EPIPE' ? undefined : new QmpError('QmpClosed', `QMP connection failed: ${err.message}`, { cause: err }));
    });
    socket.on('close', () => { this.shutdown(undefined); });
    if (rest !== '') this.receive(rest);
  }

  /**
   * Connects to the QMP socket at `socketPath` (waiting for it to appear),
   * reads the greeting and negotiates capabilities.
   */
  static async connect(socketPath: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    const socket = await dialUntil(socketPath, deadline, options.signal);
    // Decoding as text from the start keeps a UTF-8 sequence split across chunks whole.
    socket.setEncoding('utf8');
    let client: QmpClient;
    try {
      const { greeting, rest } = await readGreeting(socket, socketPath, Math.max(deadline - Date.now(), 1), options.signal);
      client = new QmpClient(socket, greeting, rest, options.commandTimeoutMs ?? 30_000);
    } catch (err) {
      socket.destroy();
      throw err;
    }
    try {
      await client.execute('qmp_capabilities');
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** Runs `command` and resolves with its checked return value; rejects with a `QmpError`. */
  execute<C extends QmpCommandName>(command: C, ...args: QmpArgsParam<C>): Promise<QmpReturn<C>> {
    if (this.closedWith !== undefined) return Promise.reject(new QmpError('QmpClosed', `cannot run ${command}: the QMP connection is closed`, { cause: this.closedWith.error }));
    const id = this.nextId++;
    return new Promise<QmpReturn<C>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpError('QmpTimeout', `QEMU did not answer ${command} within ${this.commandTimeoutMs} ms`));
      }, this.commandTimeoutMs);
      const settle = (message: Record<string, unknown> | undefined): void => {
        if (message === undefined) {
          // `quit` succeeds by closing the connection; its reply may not come first.
          resolve(returnDecoder(command)({}, 'return'));
          return;
        }
        try {
          if ('error' in message) {
            const error = errorBody(message.error, 'error');
            reject(new QmpError('QmpCommandFailed', `${command} failed: ${error.desc} (${error.class})`, { errorClass: error.class }));
          } else {
            resolve(returnDecoder(command)(message.return, 'return'));
          }
        } catch (err) {
          reject(new QmpError('QmpProtocol', `QEMU's reply to ${command} does not match the QMP schema: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
        }
      };
      this.pending.set(id, { command, settle, reject, timer });
      const message: Record<string, unknown> = { execute: command, id };
      const [commandArgs] = args;
      if (commandArgs !== undefined) message.arguments = commandArgs;
      this.socket.write(`${JSON.stringify(message)}\n`);
    });
  }

  /** Every checked event QEMU sends. */
  on(event: 'event', listener: (e: QmpEvent) => void): this;
  /** Once, when the connection ends; `error` says why unless it was `close()` or QEMU exiting. */
  on(event: 'close', listener: (error: Error | undefined) => void): this;
  /** Messages that fail the schema (the connection stays open; the message is dropped). */
  on(event: 'protocolError', listener: (error: QmpError) => void): this;
  on(event: 'event' | 'close' | 'protocolError', listener: ((e: QmpEvent) => void) | ((error: Error | undefined) => void) | ((error: QmpError) => void)): this {
    this.emitter.on(event, listener);
    return this;
  }

  /** Removes a listener added with `on`. */
  off(event: 'event' | 'close', listener: ((e: QmpEvent) => void) | ((error: Error | undefined) => void)): this {
    this.emitter.off(event, listener);
    return this;
  }

  /** True once the connection has ended. */
  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Ends the session; pending commands reject with `QmpClosed`. QEMU keeps running. */
  close(): void {
    this.socket.destroy();
    this.shutdown(undefined);
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    for (let newline = this.buffer.indexOf('\n'); newline >= 0; newline = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line !== '') this.handle(line);
    }
  }

  private handle(line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch (err) {
      this.protocolError(`QEMU sent a line that is not JSON: ${line.slice(0, 120)}`, err);
      return;
    }
    if (!isRecord(message)) {
      this.protocolError(`QEMU sent a message that is not an object: ${line.slice(0, 120)}`, undefined);
    } else if (typeof message.event === 'string') {
      try {
        const event = decodeEvent(message);
        this.emitter.emit('event', event);
      } catch (err) {
        this.protocolError(`event ${message.event} does not match the QMP schema: ${err instanceof Error ? err.message : String(err)}`, err);
      }
    } else if ('return' in message || 'error' in message) {
      const id = message.id;
      const pending = typeof id === 'number' ? this.pending.get(id) : undefined;
      if (typeof id !== 'number' || pending === undefined) {
        // A reply to a command that already timed out carries an id we issued; anything else is a protocol fault.
        if (typeof id !== 'number' || id >= this.nextId) this.protocolError(`QEMU replied to an unknown command id ${JSON.stringify(id)}`, undefined);
        return;
      }
      this.pending.delete(id);
      clearTimeout(pending.timer);
      pending.settle(message);
    } else {
      this.protocolError(`QEMU sent a message that is neither a reply nor an event: ${line.slice(0, 120)}`, undefined);
    }
  }

  private protocolError(message: string, cause: unknown): void {
    this.emitter.emit('protocolError', new QmpError('QmpProtocol', message, { cause }));
  }

  private shutdown(error: Error | undefined): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = { error };
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      clearTimeout(pending.timer);
      if (pending.command === 'quit') pending.settle(undefined);
      else pending.reject(new QmpError('QmpClosed', `the QMP connection closed before QEMU answered ${pending.command}`, { cause: error }));
    }
    this.emitter.emit('close', error);
  }
}

/** Waits for the first line on `socket` and checks it is a QMP greeting; returns what followed it. */
function readGreeting(socket: Socket, path: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<{ greeting: QmpGreeting; rest: string }> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const finish = (outcome: () => void): void => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      socket.removeListener('error', onClose);
      signal?.removeEventListener('abort', onAbort);
      outcome();
    };
    const onData = (chunk: string): void => {
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline < 0) return;
      const line = buffer.slice(0, newline);
      finish(() => {
        try {
          resolve({ greeting: greetingDecoder(JSON.parse(line), 'greeting'), rest: buffer.slice(newline + 1) });
        } catch (err) {
          const why = err instanceof DecodeError ? err.message : 'not JSON';
          reject(new QmpError('QmpProtocol', `${path} did not greet with QMP (${why}): ${line.slice(0, 120)}`, { cause: err }));
        }
      });
    };
    const onClose = (): void => { finish(() => { reject(new QmpError('QmpClosed', `${path} closed before QEMU greeted`)); }); };
    const onAbort = (): void => { finish(() => { reject(abortReason(signal)); }); };
    const timer = setTimeout(() => {
      finish(() => { reject(new QmpError('QmpTimeout', `no QMP greeting on ${path} within ${timeoutMs} ms (QEMU serves one QMP client at a time: is another attached?)`)); });
    }, timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted === true) onAbort();
  });
}
