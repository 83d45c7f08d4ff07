/**
 * The protobuf messages of the kinds kubectl's `create <generator>`
 * commands send. Field numbers are those of Kubernetes' generated.proto
 * files (k8s.io/api core/v1 and scheduling/v1, k8s.io/apimachinery
 * meta/v1, runtime and util/intstr); fields are listed in Go struct order
 * (the JSON key order), and presence follows the Go types' JSON tags
 * (`omitempty` on a value, a pointer, or neither).
 */
import { field, message } from './decode.js';
import type { MessageSpec } from './decode.js';

// k8s.io/apimachinery/pkg/apis/meta/v1

const ownerReference = message('OwnerReference', [
  field('apiVersion', 5, 'string', 'always'),
  field('kind', 1, 'string', 'always'),
  field('name', 3, 'string', 'always'),
  field('uid', 4, 'string', 'always'),
  field('controller', 6, 'bool', 'pointer'),
  field('blockOwnerDeletion', 7, 'bool', 'pointer'),
]);

const managedFieldsEntry = message('ManagedFieldsEntry', [
  field('manager', 1, 'string', 'omitempty'),
  field('operation', 2, 'string', 'omitempty'),
  field('apiVersion', 3, 'string', 'omitempty'),
  field('time', 4, 'time', 'pointer'),
  field('fieldsType', 6, 'string', 'omitempty'),
  field('fieldsV1', 7, 'fieldsV1', 'pointer'),
  field('subresource', 8, 'string', 'omitempty'),
]);

/** meta/v1 ObjectMeta (field numbers 15 and 16 are retired: clusterName and an unused one). */
export const objectMeta = message('ObjectMeta', [
  field('name', 1, 'string', 'omitempty'),
  field('generateName', 2, 'string', 'omitempty'),
  field('namespace', 3, 'string', 'omitempty'),
  field('selfLink', 4, 'string', 'omitempty'),
  field('uid', 5, 'string', 'omitempty'),
  field('resourceVersion', 6, 'string', 'omitempty'),
  field('generation', 7, 'int64', 'omitempty'),
  // Kubernetes now tags this `omitzero`: a client's zero time is left out rather than sent as null.
  field('creationTimestamp', 8, 'time', 'omitempty'),
  field('deletionTimestamp', 9, 'time', 'pointer'),
  field('deletionGracePeriodSeconds', 10, 'int64', 'pointer'),
  field('labels', 11, 'string', 'omitempty', 'map'),
  field('annotations', 12, 'string', 'omitempty', 'map'),
  field('ownerReferences', 13, ownerReference, 'omitempty', 'repeated'),
  field('finalizers', 14, 'string', 'omitempty', 'repeated'),
  field('managedFields', 17, managedFieldsEntry, 'omitempty', 'repeated'),
]);

const condition = message('Condition', [
  field('type', 1, 'string', 'always'),
  field('status', 2, 'string', 'always'),
  field('observedGeneration', 3, 'int64', 'omitempty'),
  field('lastTransitionTime', 4, 'time', 'always'),
  field('reason', 5, 'string', 'always'),
  field('message', 6, 'string', 'always'),
]);

const metadata = field('metadata', 1, objectMeta, 'always');

// k8s.io/api/core/v1

const objectReference = message('ObjectReference', [
  field('kind', 1, 'string', 'omitempty'),
  field('namespace', 2, 'string', 'omitempty'),
  field('name', 3, 'string', 'omitempty'),
  field('uid', 4, 'string', 'omitempty'),
  field('apiVersion', 5, 'string', 'omitempty'),
  field('resourceVersion', 6, 'string', 'omitempty'),
  field('fieldPath', 7, 'string', 'omitempty'),
]);

const localObjectReference = message('LocalObjectReference', [field('name', 1, 'string', 'omitempty')]);

const configMap = message('ConfigMap', [
  metadata,
  field('immutable', 4, 'bool', 'pointer'),
  field('data', 2, 'string', 'omitempty', 'map'),
  field('binaryData', 3, 'bytes', 'omitempty', 'map'),
]);

const secret = message('Secret', [
  metadata,
  field('immutable', 5, 'bool', 'pointer'),
  field('data', 2, 'bytes', 'omitempty', 'map'),
  field('stringData', 4, 'string', 'omitempty', 'map'),
  field('type', 3, 'string', 'omitempty'),
]);

const namespaceCondition = message('NamespaceCondition', [
  field('type', 1, 'string', 'always'),
  field('status', 2, 'string', 'always'),
  // A struct under `omitempty`, which Go never drops: the zero time is written as null.
  field('lastTransitionTime', 4, 'time', 'always'),
  field('reason', 5, 'string', 'omitempty'),
  field('message', 6, 'string', 'omitempty'),
]);

const namespace = message('Namespace', [
  metadata,
  field('spec', 2, message('NamespaceSpec', [field('finalizers', 1, 'string', 'omitempty', 'repeated')]), 'always'),
  field(
    'status',
    3,
    message('NamespaceStatus', [
      field('phase', 1, 'string', 'omitempty'),
      field('conditions', 2, namespaceCondition, 'omitempty', 'repeated'),
    ]),
    'always',
  ),
]);

const serviceAccount = message('ServiceAccount', [
  metadata,
  field('secrets', 2, objectReference, 'omitempty', 'repeated'),
  field('imagePullSecrets', 3, localObjectReference, 'omitempty', 'repeated'),
  field('automountServiceAccountToken', 4, 'bool', 'pointer'),
]);

const servicePort = message('ServicePort', [
  field('name', 1, 'string', 'omitempty'),
  field('protocol', 2, 'string', 'omitempty'),
  field('appProtocol', 6, 'string', 'pointer'),
  field('port', 3, 'int32', 'always'),
  field('targetPort', 4, 'intOrString', 'always'),
  field('nodePort', 5, 'int32', 'omitempty'),
]);

const sessionAffinityConfig = message('SessionAffinityConfig', [
  field('clientIP', 1, message('ClientIPConfig', [field('timeoutSeconds', 1, 'int32', 'pointer')]), 'pointer'),
]);

/** core/v1 ServiceSpec (field numbers 15 and 16 are retired: ipFamily and topologyKeys). */
const serviceSpec = message('ServiceSpec', [
  field('ports', 1, servicePort, 'omitempty', 'repeated'),
  field('selector', 2, 'string', 'omitempty', 'map'),
  field('clusterIP', 3, 'string', 'omitempty'),
  field('clusterIPs', 18, 'string', 'omitempty', 'repeated'),
  field('type', 4, 'string', 'omitempty'),
  field('externalIPs', 5, 'string', 'omitempty', 'repeated'),
  field('sessionAffinity', 7, 'string', 'omitempty'),
  field('loadBalancerIP', 8, 'string', 'omitempty'),
  field('loadBalancerSourceRanges', 9, 'string', 'omitempty', 'repeated'),
  field('externalName', 10, 'string', 'omitempty'),
  field('externalTrafficPolicy', 11, 'string', 'omitempty'),
  field('healthCheckNodePort', 12, 'int32', 'omitempty'),
  field('publishNotReadyAddresses', 13, 'bool', 'omitempty'),
  field('sessionAffinityConfig', 14, sessionAffinityConfig, 'pointer'),
  field('ipFamilies', 19, 'string', 'omitempty', 'repeated'),
  field('ipFamilyPolicy', 17, 'string', 'pointer'),
  field('allocateLoadBalancerNodePorts', 20, 'bool', 'pointer'),
  field('loadBalancerClass', 21, 'string', 'pointer'),
  field('internalTrafficPolicy', 22, 'string', 'pointer'),
  field('trafficDistribution', 23, 'string', 'pointer'),
]);

const portStatus = message('PortStatus', [
  field('port', 1, 'int32', 'always'),
  field('protocol', 2, 'string', 'always'),
  field('error', 3, 'string', 'pointer'),
]);

const loadBalancerIngress = message('LoadBalancerIngress', [
  field('ip', 1, 'string', 'omitempty'),
  field('hostname', 2, 'string', 'omitempty'),
  field('ipMode', 3, 'string', 'pointer'),
  field('ports', 4, portStatus, 'omitempty', 'repeated'),
]);

const serviceStatus = message('ServiceStatus', [
  field('loadBalancer', 1, message('LoadBalancerStatus', [field('ingress', 1, loadBalancerIngress, 'omitempty', 'repeated')]), 'always'),
  field('conditions', 2, condition, 'omitempty', 'repeated'),
]);

const service = message('Service', [metadata, field('spec', 2, serviceSpec, 'always'), field('status', 3, serviceStatus, 'always')]);

// k8s.io/api/scheduling/v1

const priorityClass = message('PriorityClass', [
  metadata,
  field('value', 2, 'int32', 'always'),
  field('globalDefault', 3, 'bool', 'omitempty'),
  field('description', 4, 'string', 'omitempty'),
  field('preemptionPolicy', 5, 'string', 'pointer'),
]);

/** The kinds decoded from protobuf, by `apiVersion` then `kind` (as in `runtime.Unknown`'s TypeMeta). */
export const protobufKinds: ReadonlyMap<string, ReadonlyMap<string, MessageSpec>> = new Map([
  [
    'v1',
    new Map([
      ['ConfigMap', configMap],
      ['Secret', secret],
      ['Namespace', namespace],
      ['ServiceAccount', serviceAccount],
      ['Service', service],
    ]),
  ],
  ['scheduling.k8s.io/v1', new Map([['PriorityClass', priorityClass]])],
]);
