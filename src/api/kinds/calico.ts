/**
 * Calico's policy CRDs as Calico installs them: `crd.projectcalico.org/v1`
 * GlobalNetworkPolicy (cluster-scoped), NetworkPolicy (namespaced: the
 * same spec without `namespaceSelector`), GlobalNetworkSet and NetworkSet
 * (labelled `nets` that rule selectors match), with the fields Vireo enforces
 * (order, selector, namespaceSelector, types, ingress/egress rules with
 * action, protocol, icmp, ipVersion, source/destination nets, selectors
 * and ports). Written here: the models package has no Calico kinds.
 */
import type { KObject } from '../object.js';
import type { JSONSchemaProps, PrinterColumn } from '../resource.js';
import type { CrdSpec } from './crd-builder.js';
import { customResourceDefinition, printerColumn } from './crd-builder.js';

const str: JSONSchemaProps = { type: 'string' };
const strings: JSONSchemaProps = { type: 'array', items: str };
const intOrString: JSONSchemaProps = { anyOf: [{ type: 'integer' }, { type: 'string' }], 'x-kubernetes-int-or-string': true };
const ports: JSONSchemaProps = { type: 'array', items: intOrString, description: 'Ports: a number, a range "first:last", or a port name.' };

const entity: JSONSchemaProps = {
  type: 'object',
  description: 'The source or destination of a rule; every field set must match.',
  properties: {
    nets: { ...strings, description: 'CIDRs the address must be in.' },
    notNets: { ...strings, description: 'CIDRs the address must not be in.' },
    selector: { type: 'string', description: "Endpoints whose labels match, e.g. \"app == 'web'\"." },
    notSelector: str,
    namespaceSelector: { type: 'string', description: 'Endpoints in namespaces whose labels match.' },
    ports,
    notPorts: ports,
    serviceAccounts: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    services: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
  },
};

const icmp: JSONSchemaProps = { type: 'object', properties: { type: { type: 'integer' }, code: { type: 'integer' } } };

const rule: JSONSchemaProps = {
  type: 'object',
  required: ['action'],
  properties: {
    action: { type: 'string', description: 'Allow, Deny, Log (log and go on) or Pass (leave the Calico policies to the Kubernetes ones).' },
    protocol: intOrString,
    notProtocol: intOrString,
    ipVersion: { type: 'integer' },
    icmp,
    notICMP: icmp,
    source: entity,
    destination: entity,
    metadata: { type: 'object', properties: { annotations: { type: 'object', additionalProperties: str } } },
  },
};

function policySchema(scope: 'global' | 'namespaced'): JSONSchemaProps {
  const selectors: Record<string, JSONSchemaProps> = {
    selector: { type: 'string', description: 'The endpoints the policy applies to (Calico selector; all() when unset).' },
    serviceAccountSelector: str,
  };
  if (scope === 'global') selectors.namespaceSelector = { type: 'string', description: 'The policy applies to endpoints in namespaces whose labels match.' };
  return {
    type: 'object',
    properties: {
      apiVersion: str,
      kind: str,
      metadata: { type: 'object' },
      spec: {
        type: 'object',
        properties: {
          order: { type: 'number', description: 'Lower orders apply first; Kubernetes NetworkPolicies sit at 1000; unset is last.' },
          tier: str,
          ...selectors,
          types: { type: 'array', items: { type: 'string' } },
          ingress: { type: 'array', items: rule },
          egress: { type: 'array', items: rule },
          doNotTrack: { type: 'boolean' },
          preDNAT: { type: 'boolean' },
          applyOnForward: { type: 'boolean' },
          performanceHints: strings,
        },
      },
    },
  };
}

function networkSetSchema(): JSONSchemaProps {
  return {
    type: 'object',
    properties: {
      apiVersion: str,
      kind: str,
      metadata: { type: 'object' },
      spec: { type: 'object', properties: { nets: { ...strings, description: 'The CIDRs (or addresses) of the set; rule selectors matching its labels match them.' } } },
    },
  };
}

/** One `crd.projectcalico.org/v1` kind: its names follow Calico's (lowercase kind, plural with -ies or -s). */
function calicoCrd(kind: string, plural: string, scope: 'Cluster' | 'Namespaced', what: { columns: PrinterColumn[]; schema: () => JSONSchemaProps; shortNames?: string[] }): CrdSpec {
  return { group: 'crd.projectcalico.org', kind, plural, singular: kind.toLowerCase(), scope, versions: [{ name: 'v1', storage: true }], ...what };
}

function calicoCrdSpecs(): CrdSpec[] {
  const age = printerColumn('Age', 'date', '.metadata.creationTimestamp');
  const policyColumns = [printerColumn('Order', 'number', '.spec.order'), printerColumn('Selector', 'string', '.spec.selector'), age];
  const setColumns = [printerColumn('Nets', 'string', '.spec.nets'), age];
  return [
    calicoCrd('GlobalNetworkPolicy', 'globalnetworkpolicies', 'Cluster', { shortNames: ['gnp'], columns: policyColumns, schema: () => policySchema('global') }),
    calicoCrd('NetworkPolicy', 'networkpolicies', 'Namespaced', { columns: policyColumns, schema: () => policySchema('namespaced') }),
    calicoCrd('GlobalNetworkSet', 'globalnetworksets', 'Cluster', { columns: setColumns, schema: networkSetSchema }),
    calicoCrd('NetworkSet', 'networksets', 'Namespaced', { columns: setColumns, schema: networkSetSchema }),
  ];
}

/** Calico's GlobalNetworkPolicy, NetworkPolicy, GlobalNetworkSet and NetworkSet CRDs, fresh on every call. */
export function calicoCustomResourceDefinitions(): KObject[] {
  return calicoCrdSpecs().map(customResourceDefinition);
}
