/**
 * `vireo expose vm|vmi|vmirs NAME --port P`, virtctl's expose: a Service
 * whose selector is the labels the VM's VMIs carry (a VM's
 * `spec.template.metadata.labels`, a VMI's own labels without the
 * scheduler's `kubevirt.io/nodeName`, a replica set's `matchLabels`), so it
 * routes to whichever VMI runs. The API server allocates its cluster IP and
 * node port; the endpoints controller fills its endpoints.
 */
import { parseArgs } from 'node:util';
import { ApiError } from '../../api/errors.js';
import type { KObject } from '../../api/object.js';
import { recordAt, stringMapAt } from '../../api/kinds/read.js';
import { resources } from '../../client/index.js';
import type { ResourceRef } from '../../client/index.js';
import { CliError } from '../errors.js';
import { clientFor, connectionFlags, connectionFor } from './connection.js';

export const exposeUsage = `  expose vm|vmi|vmirs NAME --port P [--target-port T] [--name SVC] [--type ClusterIP|NodePort|LoadBalancer]
         [--protocol TCP|UDP|SCTP] [--port-name N] [--node-port N] [--cluster-ip IP] [--external-ip IP]
                         Make a Service for the VM's guests: its selector is the labels of the
                         VM's template (or the VMI's, or the replica set's matchLabels).
`;

const usage = 'vireo expose vm|vmi|vmirs NAME --port PORT [--target-port PORT] [--name SERVICE] [--type ClusterIP|NodePort|LoadBalancer] [--protocol TCP] [--port-name NAME] [--node-port PORT] [--cluster-ip IP] [--external-ip IP] [-n NAMESPACE]';

interface Kind {
  ref: ResourceRef;
  label: string;
  selector(obj: KObject): Record<string, string>;
}

const vmKind: Kind = { ref: resources.virtualMachines, label: 'vm', selector: (vm) => stringMapAt(vm, 'spec', 'template', 'metadata', 'labels') };
const vmiKind: Kind = {
  ref: resources.virtualMachineInstances,
  label: 'vmi',
  selector: (vmi) => {
    // The node a VMI runs on is no property of the workload: a Service selecting it would break on the next start.
    const { ['kubevirt.io/nodeName']: _node, ...labels } = vmi.metadata.labels ?? {};
    return labels;
  },
};
const vmirsKind: Kind = {
  ref: resources.virtualMachineInstanceReplicaSets,
  label: 'vmirs',
  selector: (rs) => {
    if (Array.isArray(recordAt(rs, 'spec', 'selector')?.matchExpressions) && (recordAt(rs, 'spec', 'selector')?.matchExpressions as unknown[]).length > 0) {
      throw new CliError('usage', `cannot expose VirtualMachineInstanceReplicaSet ${rs.metadata.name ?? ''} with match expressions: a Service selects by labels only; give the replica set a matchLabels selector`);
    }
    return stringMapAt(rs, 'spec', 'selector', 'matchLabels');
  },
};

const kinds: Record<string, Kind> = {
  vm: vmKind,
  vms: vmKind,
  virtualmachine: vmKind,
  virtualmachines: vmKind,
  vmi: vmiKind,
  vmis: vmiKind,
  virtualmachineinstance: vmiKind,
  virtualmachineinstances: vmiKind,
  vmirs: vmirsKind,
  virtualmachineinstancereplicaset: vmirsKind,
  virtualmachineinstancereplicasets: vmirsKind,
};

const serviceTypes: Record<string, string> = { clusterip: 'ClusterIP', nodeport: 'NodePort', loadbalancer: 'LoadBalancer' };

function portNumber(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) throw new CliError('usage', `--${flag} ${value} is not a port: use a number from 1 to 65535`);
  return n;
}

/** `expose vm|vmi|vmirs NAME --port P …` */
export async function runExpose(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...connectionFlags,
      port: { type: 'string' },
      'target-port': { type: 'string' },
      name: { type: 'string' },
      type: { type: 'string' },
      protocol: { type: 'string' },
      'port-name': { type: 'string' },
      'node-port': { type: 'string' },
      'cluster-ip': { type: 'string' },
      'external-ip': { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [kindName, name, extra] = positionals;
  if (kindName === undefined || name === undefined || extra !== undefined) throw new CliError('usage', `usage: ${usage}`);
  const kind = kinds[kindName.toLowerCase()];
  if (kind === undefined) throw new CliError('usage', `unsupported resource type: ${kindName}: expose a vm, vmi or vmirs`);
  const port = portNumber('port', values.port);
  if (port === undefined) throw new CliError('usage', `required flag(s) "port" not set (usage: ${usage})`);
  const typeFlag = values.type ?? 'ClusterIP';
  const type = serviceTypes[typeFlag.toLowerCase()];
  if (type === undefined) throw new CliError('usage', `unknown service type: ${typeFlag}: use ClusterIP, NodePort or LoadBalancer`);
  const nodePort = portNumber('node-port', values['node-port']);
  if (nodePort !== undefined && type === 'ClusterIP') throw new CliError('usage', '--node-port needs --type NodePort or LoadBalancer: a ClusterIP Service has no node port');
  const target = values['target-port'];
  const targetPort = target === undefined || target === '' ? port : /^\d+$/.test(target) ? Number(target) : target;
  const protocol = (values.protocol ?? 'TCP').toUpperCase();

  const connection = connectionFor(values);
  const client = clientFor(connection);
  try {
    const source = await client.tryGet(kind.ref, connection.namespace, name);
    if (source === undefined) throw new CliError('not-found', `${kind.label} ${name} not found in namespace ${connection.namespace}`);
    const selector = kind.selector(source);
    if (Object.keys(selector).length === 0) {
      const where = kind === vmKind ? 'spec.template.metadata.labels' : kind === vmiKind ? 'metadata.labels' : 'spec.selector.matchLabels';
      throw new CliError('usage', `cannot expose ${kind.label} ${name} without any label: a Service selects its VMIs by labels; add some to its ${where}`);
    }
    const serviceName = values.name ?? name;
    const servicePort: Record<string, unknown> = { port, targetPort, protocol };
    if (values['port-name'] !== undefined) servicePort.name = values['port-name'];
    if (nodePort !== undefined) servicePort.nodePort = nodePort;
    const spec: Record<string, unknown> = { type, selector, ports: [servicePort] };
    if (values['cluster-ip'] !== undefined) spec.clusterIP = values['cluster-ip'];
    if (values['external-ip'] !== undefined) spec.externalIPs = [values['external-ip']];
    const service: KObject = { apiVersion: 'v1', kind: 'Service', metadata: { name: serviceName, namespace: connection.namespace }, spec };
    try {
      await client.create(resources.services, service);
    } catch (err) {
      if (err instanceof ApiError) throw new ApiError(err.reason, `service ${serviceName} could not be created: ${err.message}`, { cause: err });
      throw err;
    }
    process.stdout.write(`Service ${serviceName} successfully exposed for ${kind.label} ${name}\n`);
  } finally {
    client.close();
  }
}
