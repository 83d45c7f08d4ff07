/**
 * The server's component status gauges, as KubeVirt's components report
 * theirs: `kubevirt_virt_controller_leading_status` (1 on the server whose
 * singletons run, 0 on the others), `kubevirt_virt_controller_ready_status`
 * (1: this server's controllers can take the lead) and
 * `kubevirt_virt_api_ready_status` (1: its API serves). Every server
 * reports its own, so `sum()` over the servers counts leaders and ready
 * servers, which is what KubeVirt's `cluster:kubevirt_virt_controller_leading:sum`
 * and `_ready:sum` recording rules compute. (`cluster:kubevirt_virt_*_up:sum`
 * come from Prometheus' own `up` of the scrape job, not from a family.)
 */
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';

export interface ComponentStatus {
  /** Whether this server runs the cluster's singletons now. */
  leading(): boolean;
}

export function addComponentStatus(registry: Registry, status: ComponentStatus): void {
  new Gauge({
    name: 'kubevirt_virt_controller_leading_status',
    help: 'Indication for an operating virt-controller.',
    registers: [registry],
    collect(this: Gauge) { this.set(status.leading() ? 1 : 0); },
  });
  new Gauge({ name: 'kubevirt_virt_controller_ready_status', help: 'Indication for a virt-controller that is ready to take the lead.', registers: [registry] }).set(1);
  new Gauge({ name: 'kubevirt_virt_api_ready_status', help: 'Indication for a virt-api server that is ready to serve requests.', registers: [registry] }).set(1);
}
