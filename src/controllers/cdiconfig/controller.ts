/**
 * CDI's config controller, the part Vireo needs: the cluster's CDIConfig
 * named `config` exists, and its `status.uploadProxyURL` is the upload
 * proxy's address, or `spec.uploadProxyURLOverride` while one is set.
 * virtctl and `vireo image-upload` read that field to know where to send
 * an upload, so an override takes effect as soon as it is saved.
 */
import type { KObject } from '../../api/object.js';
import { recordAt, stringAt } from '../../api/kinds/read.js';
import { Informer } from '../../client/index.js';
import type { Client } from '../../client/index.js';
import type { ResourceRef } from '../../client/types.js';
import type { Logger } from '../../log/logger.js';
import { EventRecorder } from '../events/index.js';
import { ControllerLoop } from '../loop.js';
import { WorkQueue } from '../queue.js';
import type { ReconcileResult } from '../queue.js';

export const cdiConfigs: ResourceRef = { group: 'cdi.kubevirt.io', version: 'v1beta1', plural: 'cdiconfigs', namespaced: false };

/** The one CDIConfig CDI reads; others are left alone, as CDI does. */
export const cdiConfigName = 'config';

/** The upload proxy URL `config` should publish. */
export function wantedUploadProxyUrl(config: KObject | undefined, proxyUrl: string): string {
  const override = stringAt(config, 'spec', 'uploadProxyURLOverride') ?? '';
  return override === '' ? proxyUrl : override;
}

export class CdiConfigController {
  private readonly configs: Informer;
  private readonly loop: ControllerLoop;

  constructor(
    private readonly client: Client,
    /** This server's upload proxy, e.g. `https://127.0.0.1:6443`. */
    private readonly proxyUrl: string,
    private readonly logger: Logger,
  ) {
    const queue = new WorkQueue((key) => this.reconcile(key), { logger, concurrency: 1, baseDelayMs: 200, maxDelayMs: 30_000, objectOf: (key) => this.configs.get(key) });
    this.loop = new ControllerLoop(queue, new EventRecorder(client, 'cdi-config-controller', logger));
    this.configs = this.loop.informer(undefined, () => new Informer(client, cdiConfigs, logger));
    this.configs.onChange((key) => { if (key === cdiConfigName) queue.add(key); });
    queue.add(cdiConfigName);
  }

  async start(): Promise<void> {
    await this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  private async reconcile(name: string): Promise<ReconcileResult | undefined> {
    const current = this.configs.get(name);
    if (current === undefined) {
      // CDI's operator keeps `config` in place; a deleted one comes back with defaults.
      await this.client.create(cdiConfigs, { apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'CDIConfig', metadata: { name }, spec: {} });
      return undefined;
    }
    const wanted = wantedUploadProxyUrl(current, this.proxyUrl);
    if (stringAt(current, 'status', 'uploadProxyURL') === wanted) return undefined;
    // CDI's CDIConfig has no status subresource: status is written with the object.
    await this.client.update(cdiConfigs, { ...current, status: { ...(recordAt(current, 'status') ?? {}), uploadProxyURL: wanted } });
    this.logger.info('CDIConfig upload proxy URL published', { uploadProxyURL: wanted });
    return undefined;
  }
}
