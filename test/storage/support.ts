/**
 * Manifests the storage end-to-end tests share: a claim, and a VM booting
 * the test guest with a claim as its data disk and a NoCloud script that
 * reads and writes it.
 */
import type { KObject } from '../../src/api/object.js';
import { TEST_GUEST_IMAGE } from '../../src/agent/images/index.js';

/** A ReadWriteOnce claim of `size` in `default`; `extra` is merged into its spec (class, data source, volume mode). */
export function claim(name: string, size: string, extra: Record<string, unknown> = {}): KObject {
  return { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: 'default' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } }, ...extra } };
}

export interface PvcVmOptions {
  /** The claim attached as the second virtio disk (/dev/vdb, volume `data`); none leaves the guest with its root and NoCloud disks only. */
  claimName?: string;
  /** The NoCloud user-data, run at every boot of a new VMI. */
  userData: string;
  /** `terminationGracePeriodSeconds`: 0 kills the guest at once on a stop. */
  graceSeconds: number;
}

/** A running VM of the test guest: its containerDisk as /dev/vda, the claim as /dev/vdb, the NoCloud disk third. */
export function pvcVm(name: string, options: PvcVmOptions): KObject {
  const data = options.claimName === undefined ? [] : [{ name: 'data', disk: { bus: 'virtio' } }];
  const dataVolume = options.claimName === undefined ? [] : [{ name: 'data', persistentVolumeClaim: { claimName: options.claimName } }];
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default' },
    spec: {
      runStrategy: 'Always',
      template: {
        spec: {
          terminationGracePeriodSeconds: options.graceSeconds,
          domain: {
            devices: { autoattachGraphicsDevice: false, disks: [{ name: 'root', disk: { bus: 'virtio' } }, ...data, { name: 'cloudinit', disk: { bus: 'virtio' } }] },
            memory: { guest: '128Mi' },
            resources: {},
          },
          volumes: [
            { name: 'root', containerDisk: { image: TEST_GUEST_IMAGE } },
            ...dataVolume,
            { name: 'cloudinit', cloudInitNoCloud: { userData: options.userData } },
          ],
        },
      },
    },
  };
}
