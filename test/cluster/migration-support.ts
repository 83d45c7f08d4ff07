/**
 * What the live migration lab tests share (test/cluster/migration*.test.ts):
 * the migrating guest (the test guest, a 16 MiB emptyDisk, no network) and
 * the loop it runs writing a counter to that disk and its console (read
 * with test/cluster/lab-console.ts).
 */
import type { KObject } from '../../src/api/object.js';
import { TEST_GUEST_IMAGE } from '../../src/agent/images/index.js';

export const bootMs = 300_000;
export const labLabel = 'vireo.io/migration-lab';

/** The migrating guest: the test guest's containerDisk, a 16 MiB emptyDisk, no network (the pod network's move is test/cluster/migration-network.test.ts). */
export function moverVmi(name: string, options: { memory?: string; label?: string } = {}): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'default', labels: { app: name } },
    spec: {
      terminationGracePeriodSeconds: 0,
      nodeSelector: { [options.label ?? labLabel]: 'yes' },
      domain: {
        devices: {
          autoattachGraphicsDevice: false,
          autoattachPodInterface: false,
          disks: [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'data', disk: { bus: 'virtio' } }],
          interfaces: [],
        },
        memory: { guest: options.memory ?? '128Mi' },
      },
      networks: [],
      volumes: [{ name: 'root', containerDisk: { image: TEST_GUEST_IMAGE } }, { name: 'data', emptyDisk: { capacity: '16Mi' } }],
    },
  };
}

/** Each second: record `tick-N` (16 bytes) at block N of /dev/vdb, then `count N` on the console. */
export const counterLoop = '(i=0; while true; do i=$((i+1)); printf "tick-%08d   " $i | dd of=/dev/vdb bs=16 seek=$i conv=notrunc 2>/dev/null; sync; echo "count $i"; sleep 1; done) &';
