/**
 * The first run of `vireo up`: builds (or reuses) the tiny test guest,
 * imports it into this node's image store as `localhost/vireo/tiny:latest`,
 * and creates a running demo VM from it, so a newcomer has a VM to look at.
 */
import type { Client } from '../client/index.js';
import { resources } from '../client/index.js';
import type { ImageStore } from '../agent/images/index.js';
import { importTestGuest, TEST_GUEST_IMAGE } from '../agent/images/guest.js';
import type { KObject } from '../api/object.js';

export interface DemoOptions {
  client: Client;
  images: ImageStore;
  signal: AbortSignal;
  /** Progress lines for the user (long steps: package download, image build). */
  say: (line: string) => void;
}

export const demoVmName = 'demo';

export function demoVirtualMachine(): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: demoVmName, namespace: 'default', labels: { app: 'vireo-demo' } },
    spec: {
      runStrategy: 'Always',
      template: {
        metadata: { labels: { app: 'vireo-demo' } },
        spec: {
          domain: {
            cpu: { cores: 1 },
            memory: { guest: '128Mi' },
            devices: { disks: [{ name: 'rootdisk', disk: { bus: 'virtio' } }, { name: 'cloudinit', disk: { bus: 'virtio' } }] },
          },
          terminationGracePeriodSeconds: 10,
          volumes: [
            { name: 'rootdisk', containerDisk: { image: TEST_GUEST_IMAGE } },
            { name: 'cloudinit', cloudInitNoCloud: { userData: '#!/bin/sh\necho "hello from the Vireo demo VM ($(hostname))"\n' } },
          ],
        },
      },
    },
  };
}

/** Makes sure the demo VM exists (creating it once); a second run reuses the built image and the VM. */
export async function ensureDemo(options: DemoOptions): Promise<void> {
  if ((await options.images.resolve(TEST_GUEST_IMAGE)) === undefined) {
    options.say(`building the test guest image ${TEST_GUEST_IMAGE} from Debian packages (first run only; about a minute)…`);
    await importTestGuest(options.images, { signal: options.signal, onProgress: (line) => { options.say(`  ${line}`); } });
    options.say(`imported ${TEST_GUEST_IMAGE} into this node's image store`);
  }
  const existing = await options.client.tryGet(resources.virtualMachines, 'default', demoVmName);
  if (existing === undefined) {
    await options.client.create(resources.virtualMachines, demoVirtualMachine());
    options.say(`created VirtualMachine default/${demoVmName}`);
  }
}
