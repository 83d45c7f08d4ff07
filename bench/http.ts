/** A small keep-alive HTTPS client for benchmarks: timing without library overhead. */
import { Agent, request } from 'node:https';
import type { IncomingMessage } from 'node:http';

export interface BenchClient {
  call(method: string, path: string, body?: string): Promise<{ status: number; body: string }>;
  stream(path: string, onLine: (line: string) => void): { close(): void; ready: Promise<void> };
  close(): void;
}

export function benchClient(url: string, token: string, ca: string, maxSockets = 64): BenchClient {
  const agent = new Agent({ ca, keepAlive: true, maxSockets });
  const streamAgent = new Agent({ ca, keepAlive: false, maxSockets: Infinity });
  const headers = (body?: string): Record<string, string> => ({
    authorization: `Bearer ${token}`,
    ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }),
  });
  return {
    call(method, path, body) {
      return new Promise((resolve, reject) => {
        const req = request(`${url}${path}`, { method, agent, headers: headers(body) }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }); });
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
    },
    stream(path, onLine) {
      let response: IncomingMessage | undefined;
      const req = request(`${url}${path}`, { agent: streamAgent, headers: headers() });
      const ready = new Promise<void>((resolve, reject) => {
        req.on('response', (res) => {
          response = res;
          let buf = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buf += chunk;
            let nl = buf.indexOf('\n');
            while (nl >= 0) {
              onLine(buf.slice(0, nl));
              buf = buf.slice(nl + 1);
              nl = buf.indexOf('\n');
            }
          });
          res.on('error', () => undefined);
          resolve();
        });
        req.on('error', reject);
      });
      req.end();
      return {
        ready,
        close() {
          response?.destroy();
          req.destroy();
        },
      };
    },
    close() {
      agent.destroy();
      streamAgent.destroy();
    },
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] ?? NaN;
}
