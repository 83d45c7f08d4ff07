/**
 * What the live migration lab tests share (test/cluster/migration*.test.ts):
 * the migrating guest (the test guest, a 16 MiB emptyDisk, no network),
 * the loop it runs writing a counter to that disk and its console, and
 * the console read through the API server wherever the guest runs.
 */
import type { WebSocket } from 'ws';
import type { KObject } from '../../src/api/object.js';
import { TEST_GUEST_IMAGE } from '../../src/agent/images/index.js';
import { dialStream } from '../../src/console/index.js';
import type { LabCluster } from './support.js';

export const bootMs = 300_000;
export const labLabel = 'vireo.io/migration-lab';

/** The guest's serial console through the API server (whichever node runs it): the kept log, then the stream. */
export class LabConsole {
  private text = '';
  private constructor(private readonly ws: WebSocket) {}

  static async open(cluster: LabCluster, name: string): Promise<LabConsole> {
    const base = `/apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachineinstances/${name}`;
    const ws = await dialStream({ server: cluster.server.url, token: cluster.server.token, caCert: cluster.server.caCert, path: `${base}/console` });
    const console = new LabConsole(ws);
    let streamed = '';
    let kept = '';
    ws.on('message', (data: Buffer) => { streamed += data.toString('utf8'); console.text = kept + streamed; });
    // Read after the stream opened: what the guest printed before is in the log, what after in the stream.
    const log = await cluster.client.raw('GET', `${base}/consolelog`);
    kept = log.status === 200 ? log.body : '';
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

/** The counters the guest's loop printed (`count N` lines). */
export function counters(text: string): number[] {
  // Not anchored at the line start: the loop's first line may follow the shell's prompt.
  return [...text.matchAll(/count (\d+)\r?$/gm)].map((m) => Number(m[1]));
}

/** The migrating guest: the test guest's containerDisk, a 16 MiB emptyDisk, no network (the pod network cannot move yet). */
export function moverVmi(name: string): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'default', labels: { app: name } },
    spec: {
      terminationGracePeriodSeconds: 0,
      nodeSelector: { [labLabel]: 'yes' },
      domain: {
        devices: {
          autoattachGraphicsDevice: false,
          autoattachPodInterface: false,
          disks: [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'data', disk: { bus: 'virtio' } }],
          interfaces: [],
        },
        memory: { guest: '128Mi' },
      },
      networks: [],
      volumes: [{ name: 'root', containerDisk: { image: TEST_GUEST_IMAGE } }, { name: 'data', emptyDisk: { capacity: '16Mi' } }],
    },
  };
}

/** Each second: record `tick-N` (16 bytes) at block N of /dev/vdb, then `count N` on the console. */
export const counterLoop = '(i=0; while true; do i=$((i+1)); printf "tick-%08d   " $i | dd of=/dev/vdb bs=16 seek=$i conv=notrunc 2>/dev/null; sync; echo "count $i"; sleep 1; done) &';
