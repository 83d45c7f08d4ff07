/**
 * The serial console of one VMI. QEMU's socket chardev takes one client,
 * so the agent holds that one connection and shares it: every subscriber
 * sees the output from when it subscribed, input from any of them goes to
 * the guest, and all output is also kept in a bounded log on disk
 * (KubeVirt's `logSerialConsole`, here the last ~1 MiB).
 */
import { closeSync, existsSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { Logger } from '../log/logger.js';

/** Where the console connects and keeps its log. */
export interface SerialConsoleOptions {
  socketPath: string;
  /** The kept output; the older half rotates to `<logFile>.1`. */
  logFile: string;
  logger: Logger;
  /** Output kept on disk. Default 1 MiB. */
  maxLogBytes?: number;
}

/** A subscriber that lets this much output pile up unread is dropped, so one stuck client cannot grow the agent. */
const maxUnreadBytes = 8 * 1024 * 1024;

/** The shared serial console of one VMI; see the module comment. */
export class SerialConsole {
  private socket: Socket | undefined;
  private readonly subscribers = new Set<Duplex>();
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private logFd: number | undefined;
  private logBytes = 0;
  private readonly maxLogBytes: number;

  constructor(private readonly options: SerialConsoleOptions) {
    this.maxLogBytes = options.maxLogBytes ?? 1024 * 1024;
  }

  /**
   * Connects to QEMU's serial socket; resolves once connected. Keeps
   * reconnecting in the background if the connection drops while the
   * console is open.
   */
  async open(signal: AbortSignal): Promise<void> {
    this.openLog();
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw signal.reason;
      try {
        await this.connectOnce();
        return;
      } catch (err) {
        // The socket exists once QMP answers; a refusal here means a previous client still holds it.
        if (attempt >= 50) throw err;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  /** A new console session: output from now on, input to the guest. Ending it never affects the guest. */
  subscribe(): Duplex {
    const stream: Duplex = new Duplex({
      read: () => undefined,
      write: (chunk: Buffer, _encoding, callback) => {
        this.socket?.write(chunk);
        callback();
      },
      final: (callback) => {
        this.subscribers.delete(stream);
        stream.push(null);
        callback();
      },
      destroy: (err, callback) => {
        this.subscribers.delete(stream);
        callback(err);
      },
    });
    if (this.closed) stream.push(null);
    else this.subscribers.add(stream);
    return stream;
  }

  /** The kept output, oldest first. */
  readLog(): string {
    return readSerialLog(this.options.logFile, this.maxLogBytes);
  }

  /** Ends every session and lets go of QEMU's socket (the guest keeps running). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.socket?.destroy();
    this.socket = undefined;
    for (const s of this.subscribers) s.push(null);
    this.subscribers.clear();
    if (this.logFd !== undefined) closeSync(this.logFd);
    this.logFd = undefined;
  }

  private connectOnce(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.options.socketPath);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        if (this.closed) {
          socket.destroy();
          resolve();
          return;
        }
        this.failures = 0;
        this.socket = socket;
        socket.on('data', (chunk: Buffer) => { this.output(chunk); });
        socket.on('error', (err) => { this.options.logger.debug('serial console connection error', { err }); });
        socket.on('close', () => { this.dropped(socket); });
        resolve();
      });
    });
  }

  private dropped(socket: Socket): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.scheduleReconnect();
  }

  /** QEMU closes the chardev only when it exits (the machine then closes us); any other drop is retried. */
  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer !== undefined) return;
    const delay = Math.min(2000, 50 * 2 ** Math.min(this.failures++, 6));
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closed) return;
      this.connectOnce().catch(() => { this.scheduleReconnect(); });
    }, delay);
    this.reconnectTimer.unref();
  }

  private output(chunk: Buffer): void {
    this.appendLog(chunk);
    for (const s of this.subscribers) {
      if (!s.push(chunk) && s.readableLength > maxUnreadBytes) {
        this.subscribers.delete(s);
        s.destroy(new Error('console session dropped: it read too slowly'));
      }
    }
  }

  private openLog(): void {
    if (this.logFd !== undefined) return;
    this.logFd = openSync(this.options.logFile, 'a', 0o600);
    this.logBytes = statSync(this.options.logFile).size;
  }

  private appendLog(chunk: Buffer): void {
    if (this.logFd === undefined) return;
    try {
      writeSync(this.logFd, chunk);
      this.logBytes += chunk.length;
      if (this.logBytes >= this.maxLogBytes / 2) {
        // Two halves: the older one rotates out, so the log never exceeds maxLogBytes.
        closeSync(this.logFd);
        renameSync(this.options.logFile, `${this.options.logFile}.1`);
        this.logFd = openSync(this.options.logFile, 'a', 0o600);
        this.logBytes = 0;
      }
    } catch (err) {
      this.options.logger.warn('cannot write the serial console log', { err, file: this.options.logFile });
    }
  }
}

/** The serial output kept in `logFile` (and its older half), oldest first, at most `maxBytes`. */
export function readSerialLog(logFile: string, maxBytes = 1024 * 1024): string {
  const parts: Buffer[] = [];
  for (const file of [`${logFile}.1`, logFile]) {
    if (existsSync(file)) parts.push(readFileSync(file));
  }
  const all = Buffer.concat(parts);
  return all.subarray(Math.max(0, all.length - maxBytes)).toString('utf8');
}
