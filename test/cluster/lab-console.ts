/**
 * A lab guest's serial console through the API server, whichever node runs
 * it (the kept log, then the stream), and the counters the lab tests'
 * guest loops print on it.
 */
import type { WebSocket } from 'ws';
import { dialStream } from '../../src/console/index.js';
import type { LabCluster } from './support.js';

/** The guest's serial console through the API server (whichever node runs it): the kept log, then the stream. */
export class LabConsole {
  private text = '';
  private constructor(private readonly ws: WebSocket) {}

  static async open(cluster: LabCluster, name: string, namespace = 'default'): Promise<LabConsole> {
    const base = `/apis/subresources.kubevirt.io/v1/namespaces/${namespace}/virtualmachineinstances/${name}`;
    const ws = await dialStream({ server: cluster.server.url, token: cluster.server.token, caCert: cluster.server.caCert, path: `${base}/console` });
    const console = new LabConsole(ws);
    let streamed = '';
    let kept = '';
    ws.on('message', (data: Buffer) => { streamed += data.toString('utf8'); console.text = kept + streamed; });
    // Read after the stream opened: what the guest printed before is in the log, what after in the stream;
    // what it printed while the log was read is in both, and is kept once.
    const log = await cluster.client.raw('GET', `${base}/consolelog`);
    kept = withoutOverlap(log.status === 200 ? log.body : '', streamed);
    console.text = kept + streamed;
    return console;
  }

  output(): string {
    return this.text;
  }

  type(line: string): void {
    this.ws.send(Buffer.from(`${line}\r`), { binary: true });
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Each second, `count N` on the console, in the background. */
export const consoleCounterLoop = '(i=0; while true; do i=$((i+1)); echo "count $i"; sleep 1; done) &';

/** `log` without its end that is also the start of `streamed` (printed while the log was read). */
function withoutOverlap(log: string, streamed: string): string {
  for (let k = Math.min(log.length, streamed.length); k > 0; k--) {
    if (log.endsWith(streamed.slice(0, k))) return log.slice(0, log.length - k);
  }
  return log;
}

/** The counters the guest's loop printed (`count N` lines). */
export function counters(text: string): number[] {
  // Not anchored at the line start: the loop's first line may follow the shell's prompt.
  return [...text.matchAll(/count (\d+)\r?$/gm)].map((m) => Number(m[1]));
}
