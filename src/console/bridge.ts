/**
 * Pumps bytes between a WebSocket and a byte stream, both ways, in binary
 * frames with no channel byte (KubeVirt's `plain.kubevirt.io`), with
 * backpressure on each side: the API server uses it between a client and an
 * agent's console/VNC stream, the CLI between the server and a terminal or
 * a VNC viewer.
 */
import type { Readable, Writable } from 'node:stream';
import { WebSocket } from 'ws';
import type { RawData } from 'ws';

/** The two ends of the byte stream (the same Duplex twice, or stdin and stdout). */
export interface BridgeEnds {
  input: Readable;
  output: Writable;
}

export interface BridgeOptions {
  /** Bytes queued on the WebSocket above which `input` is paused (default 256 KiB). */
  highWaterMark?: number;
  /** End `output` once the WebSocket closes (detach from an agent stream). Default false. */
  endOutput?: boolean;
  /** Close the WebSocket when `input` ends. Default true. */
  closeOnInputEnd?: boolean;
}

/** How a bridged session ended. */
export interface BridgeEnd {
  code: number;
  reason: string;
  /** The first error either side reported, if any. */
  error: Error | undefined;
}

/** WebSocket close code for "normal closure". */
export const normalClosure = 1000;
/** WebSocket close code for "internal error": the byte stream failed. */
export const streamFailure = 1011;

function ignore(): void {
  // Deliberately empty: see the caller.
}

export function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(new Uint8Array(data));
}

/** Closes the WebSocket unless it is already closing; a reason must fit a control frame. */
export function closeSocket(ws: WebSocket, code: number, reason: string): void {
  if (ws.readyState === WebSocket.CONNECTING) { ws.terminate(); return; }
  if (ws.readyState !== WebSocket.OPEN) return;
  ws.close(code, Buffer.from(reason).subarray(0, 120).toString());
}

/**
 * Connects `ws` and `ends` until the WebSocket closes; resolves then (never
 * rejects). Input that ends closes the WebSocket normally; a failing stream
 * closes it with 1011.
 */
export function bridge(ws: WebSocket, ends: BridgeEnds, options: BridgeOptions = {}): Promise<BridgeEnd> {
  const high = options.highWaterMark ?? 256 * 1024;
  const low = Math.floor(high / 4);
  let firstError: Error | undefined;
  let inputPaused = false;
  const note = (err: Error): void => { firstError ??= err; };

  // Sockets call back with null (not undefined) on success.
  const onSent = (err?: Error | null): void => {
    if (err !== undefined && err !== null) { note(err); return; }
    if (inputPaused && ws.bufferedAmount <= low) {
      inputPaused = false;
      ends.input.resume();
    }
  };
  const onData = (chunk: Buffer | string): void => {
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(typeof chunk === 'string' ? Buffer.from(chunk) : chunk, { binary: true }, onSent);
    if (!inputPaused && ws.bufferedAmount > high) {
      inputPaused = true;
      ends.input.pause();
    }
  };
  const onInputEnd = (): void => {
    if (options.closeOnInputEnd ?? true) closeSocket(ws, normalClosure, 'stream ended');
  };
  const onInputError = (err: Error): void => {
    note(err);
    closeSocket(ws, streamFailure, `stream failed: ${err.message}`);
  };
  const onDrain = (): void => { ws.resume(); };
  const onMessage = (data: RawData): void => {
    if (!ends.output.write(toBuffer(data)) && !ws.isPaused) {
      // The terminal, viewer or agent is slower than the network: stop reading frames until it drains.
      ws.pause();
      ends.output.once('drain', onDrain);
    }
  };
  const onOutputError = (err: Error): void => {
    note(err);
    closeSocket(ws, streamFailure, `stream failed: ${err.message}`);
  };
  const onSocketError = (err: Error): void => { note(err); };

  return new Promise((resolve) => {
    const finish = (code: number, reason: string): void => {
      ends.input.off('data', onData);
      ends.input.off('end', onInputEnd);
      ends.input.off('error', onInputError);
      ends.output.off('error', onOutputError);
      ends.output.off('drain', onDrain);
      // A stream can still fail after the session (EPIPE on a half-closed socket); that must not crash the process.
      ends.input.on('error', ignore);
      ends.output.on('error', ignore);
      if (options.endOutput === true) ends.output.end();
      resolve({ code, reason, error: firstError });
    };
    ws.on('error', onSocketError);
    if (ws.readyState === WebSocket.CLOSED) { finish(1006, 'already closed'); return; }
    ws.once('close', (code: number, reason: Buffer) => { finish(code, reason.toString('utf8')); });
    ws.on('message', onMessage);
    ends.input.on('data', onData);
    ends.input.once('end', onInputEnd);
    ends.input.on('error', onInputError);
    ends.output.on('error', onOutputError);
  });
}
