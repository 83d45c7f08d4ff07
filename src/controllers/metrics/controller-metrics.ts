/**
 * virt-controller's object metrics on the server: informers on VMs, VMIs,
 * migrations, the KubeVirt CR, claims and the instancetypes and preferences, and
 * gauges whose values are computed from those caches at scrape time
 * (`object-families.ts`), never by listing the store per scrape. It is one
 * of the cluster's singletons, so only the leading server reports these
 * families (as only KubeVirt's leading virt-controller does), and a
 * two-server cluster never doubles them: its gauges are in the registry
 * only while it runs.
 */
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import { Informer, resources } from '../../client/index.js';
import type { Client } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { clusterKubeVirtOf } from '../../api/kinds/eviction.js';
import { objectFamilies, objectSamples } from './object-families.js';
import type { InstancetypeKind, ObjectFamily, Sample } from './object-families.js';
import { PhaseTransitionMetrics } from './phase-transitions.js';
import { inventoryFamilies, inventorySamples } from './inventory-families.js';
import type { InventoryFamily } from './inventory-families.js';
import { stringAt } from '../../api/kinds/read.js';
import type { KObject } from '../../api/object.js';

/** Samples are computed once for all families of one scrape; a scrape takes far less than this. */
const sampleReuseMs = 500;

type Family = ObjectFamily | InventoryFamily;
const families = { ...objectFamilies, ...inventoryFamilies };

export class VirtControllerMetrics {
  private readonly vms: Informer;
  private readonly vmis: Informer;
  private readonly migrations: Informer;
  private readonly kubevirts: Informer;
  /** Claims, for the size of the VMs' disks. */
  private readonly claims: Informer;
  private readonly instancetypes: Record<InstancetypeKind, Informer>;
  private readonly gauges: Gauge[] = [];
  private computed: { at: number; samples: Record<Family, Sample[]> } | undefined;
  private transitions: PhaseTransitionMetrics | undefined;
  /** Each VMI's phase as last seen, for the transition histograms. */
  private readonly phases = new Map<string, string>();
  /** Each migration's phase as last seen. */
  private readonly migrationPhases = new Map<string, string>();

  constructor(client: Client, private readonly registry: Registry, logger: Logger) {
    this.vms = new Informer(client, resources.virtualMachines, logger);
    this.vmis = new Informer(client, resources.virtualMachineInstances, logger);
    this.migrations = new Informer(client, resources.virtualMachineInstanceMigrations, logger);
    this.kubevirts = new Informer(client, resources.kubeVirts, logger);
    this.claims = new Informer(client, resources.persistentVolumeClaims, logger);
    this.instancetypes = {
      instancetype: new Informer(client, resources.instancetypes, logger),
      clusterInstancetype: new Informer(client, resources.clusterInstancetypes, logger),
      preference: new Informer(client, resources.preferences, logger),
      clusterPreference: new Informer(client, resources.clusterPreferences, logger),
    };
  }

  async start(): Promise<void> {
    const transitions = new PhaseTransitionMetrics(this.registry);
    this.transitions = transitions;
    this.vmis.onChange((key) => {
      const vmi = this.vmis.get(key);
      if (vmi === undefined) { this.phases.delete(key); return; }
      transitions.observe(this.phases.get(key), vmi);
      this.phases.set(key, stringAt(vmi, 'status', 'phase') ?? '');
    });
    this.migrations.onChange((key) => {
      const migration = this.migrations.get(key);
      if (migration === undefined) { this.migrationPhases.delete(key); return; }
      transitions.observeMigration(this.migrationPhases.get(key), migration);
      this.migrationPhases.set(key, stringAt(migration, 'status', 'phase') ?? '');
    });
    await Promise.all(this.informers().map((i) => i.start()));
    for (const [family, def] of Object.entries(families) as [Family, typeof families[Family]][]) {
      const samples = (): Sample[] => this.samples()[family];
      this.gauges.push(new Gauge({
        name: def.name,
        help: def.help,
        labelNames: [...def.labelNames],
        registers: [this.registry],
        collect(this: Gauge) {
          this.reset();
          for (const sample of samples()) this.set(sample.labels, sample.value);
        },
      }));
    }
  }

  async stop(): Promise<void> {
    for (const gauge of this.gauges.splice(0)) this.registry.removeSingleMetric((gauge as unknown as { name: string }).name);
    this.transitions?.remove();
    await Promise.all(this.informers().map((i) => i.stop()));
  }

  /** Whether the VMI `namespace/name` has been seen (its next phase change is a transition). */
  phaseSeen(key: string): boolean {
    return this.phases.has(key);
  }

  private samples(): Record<Family, Sample[]> {
    const now = performance.now();
    if (this.computed !== undefined && now - this.computed.at < sampleReuseMs) return this.computed.samples;
    const vms = this.vms.list();
    const vmis = this.vmis.list();
    const instancetypeLike = (kind: InstancetypeKind, key: string): KObject | undefined => this.instancetypes[kind].get(key);
    const samples = {
      ...objectSamples({ vms, vmis, migrations: this.migrations.list(), kubevirt: clusterKubeVirtOf(this.kubevirts.list()), instancetypeLike }),
      ...inventorySamples({ vms, vmis, claim: (key) => this.claims.get(key), instancetypeLike }),
    };
    this.computed = { at: now, samples };
    return samples;
  }

  private informers(): Informer[] {
    return [this.vms, this.vmis, this.migrations, this.kubevirts, this.claims, ...Object.values(this.instancetypes)];
  }
}
