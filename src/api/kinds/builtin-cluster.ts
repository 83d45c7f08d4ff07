/**
 * Built-in kinds outside the core group: Lease, CustomResourceDefinition,
 * NetworkPolicy and PriorityClass, printed as Kubernetes prints them.
 */
import type { BuiltinResourceDef } from './builtin-def.js';
import { ageCell, ageColumn, builtinResource, column } from './builtin-def.js';
import type { KObject } from '../object.js';
import { labelSelectorFromObject } from '../labels.js';
import { formatRFC3339 } from './format.js';
import { booleanAt, numberAt, recordAt, stringAt } from './read.js';

/** `coordination.k8s.io/v1 Lease`: NAME HOLDER AGE. */
export function leaseResource(): BuiltinResourceDef {
  return builtinResource({
    group: 'coordination.k8s.io',
    version: 'v1',
    kind: 'Lease',
    plural: 'leases',
    namespaced: true,
    model: 'IoK8sApiCoordinationV1Lease',
    columns: [column('Holder', '.spec.holderIdentity', 'Identity of the current holder of the lease.'), ageColumn],
    printRow: (obj, now) => [stringAt(obj, 'spec', 'holderIdentity') ?? '', ageCell(obj, now)],
  });
}

/**
 * `apiextensions.k8s.io/v1 CustomResourceDefinition`: NAME CREATED AT, from
 * Kubernetes' default table convertor, whose `Created At` cell is the UTC
 * timestamp itself, not an age.
 */
export function customResourceDefinitionResource(): BuiltinResourceDef {
  return builtinResource({
    group: 'apiextensions.k8s.io',
    version: 'v1',
    kind: 'CustomResourceDefinition',
    plural: 'customresourcedefinitions',
    namespaced: false,
    shortNames: ['crd', 'crds'],
    categories: ['api-extensions'],
    status: true,
    model: 'IoK8sApiextensionsApiserverPkgApisApiextensionsV1CustomResourceDefinition',
    columns: [
      { name: 'Created At', type: 'date', description: 'Time the object was created.', jsonPath: '.metadata.creationTimestamp' },
    ],
    printRow: (obj) => [formatRFC3339(obj.metadata.creationTimestamp)],
  });
}

/** `networking.k8s.io/v1 NetworkPolicy`: NAME POD-SELECTOR AGE. */
export function networkPolicyResource(): BuiltinResourceDef {
  return builtinResource({
    group: 'networking.k8s.io',
    version: 'v1',
    kind: 'NetworkPolicy',
    plural: 'networkpolicies',
    namespaced: true,
    shortNames: ['netpol'],
    model: 'IoK8sApiNetworkingV1NetworkPolicy',
    columns: [column('Pod-Selector', '.spec.podSelector', 'Pods the policy applies to.'), ageColumn],
    printRow: (obj, now) => [podSelectorCell(obj), ageCell(obj, now)],
  });
}

/** `metav1.FormatLabelSelector`: the selector's canonical text, `<none>` when it selects every pod, `<error>` when malformed. */
function podSelectorCell(policy: KObject): string {
  const selector = recordAt(policy, 'spec', 'podSelector') ?? {};
  try {
    // labelSelectorFromObject checks the shape at run time and throws on anything malformed.
    const text = labelSelectorFromObject(selector).toString();
    return text === '' ? '<none>' : text;
  } catch {
    return '<error>';
  }
}

/** `scheduling.k8s.io/v1 PriorityClass`: NAME VALUE GLOBAL-DEFAULT AGE PREEMPTIONPOLICY. */
export function priorityClassResource(): BuiltinResourceDef {
  return builtinResource({
    group: 'scheduling.k8s.io',
    version: 'v1',
    kind: 'PriorityClass',
    plural: 'priorityclasses',
    namespaced: false,
    shortNames: ['pc'],
    model: 'IoK8sApiSchedulingV1PriorityClass',
    columns: [
      { name: 'Value', type: 'integer', description: 'Priority of workloads that use this class.', jsonPath: '.value' },
      { name: 'Global-Default', type: 'boolean', description: 'Whether this class applies to workloads that name none.', jsonPath: '.globalDefault' },
      ageColumn,
      column('PreemptionPolicy', '.preemptionPolicy', 'Whether workloads of this class may preempt others.'),
    ],
    printRow: (obj, now) => [
      numberAt(obj, 'value') ?? 0,
      booleanAt(obj, 'globalDefault') ?? false,
      ageCell(obj, now),
      stringAt(obj, 'preemptionPolicy') ?? '',
    ],
  });
}
