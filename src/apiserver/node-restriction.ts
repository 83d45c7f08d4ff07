/**
 * What a node credential may do, as Kubernetes' Node authorizer and
 * NodeRestriction admission have it for kubelets: a node acts only on the
 * objects of its node. It reads anything but join tokens and node
 * credentials; it writes its own Node and Lease, the VMIs bound to it, the
 * PersistentVolumes pinned to it (its local volume provisioner's), the
 * claims whose data is on it or on no node yet (a provisioner binds and
 * annotates them), the VolumeSnapshotContents of its node (its snapshot
 * sidecar's), Events (as kubelets create them freely), and TokenReviews
 * (its endpoint asks who presented a token; routed before this check).
 * Everything else is refused with a 403 saying what a node may write.
 */
import { ApiError } from '../api/errors.js';
import type { KObject } from '../api/object.js';
import { isPlainObject } from '../api/object.js';
import { stringAt } from '../api/kinds/read.js';
import { bootstrapTokenPrefix, joinTokenNamespace } from '../api/join-token.js';
import { nodeCredentialSecretPrefix } from '../api/node-credential.js';
import { claimNode, exportTargetWhere, volumeNode } from '../storage/local/index.js';
import { parseSnapshotHandle } from '../storage/snapshots/handle.js';
import type { ObjectStore } from './object-store.js';
import type { ResourceRequestInfo } from './request-info.js';
import type { ResourceRegistry } from './resources.js';

const nodeLeaseNamespace = 'kube-node-lease';
const snapshotGroup = 'snapshot.storage.k8s.io';
const whatNodesWrite = 'a node credential writes only its own Node and Lease, the VMIs bound to its node, the PersistentVolumes, claims and VolumeSnapshotContents of its node, and Events';

/** What a request acts on. */
export interface NodeRequest {
  method: string;
  info: ResourceRequestInfo;
}

export class NodeRestriction {
  constructor(private readonly options: { objects: ObjectStore; registry: ResourceRegistry }) {}

  /** Refuses (403, saying why) what `node` may not do. */
  async authorize(node: string, request: NodeRequest): Promise<void> {
    const { method, info } = request;
    const forbid = (why: string): ApiError =>
      new ApiError('Forbidden', `node ${node} may not ${verbOf(method, info)} ${pathOf(info)}: ${why}`, { details: { kind: info.resource, ...(info.name === undefined ? {} : { name: info.name }) } });
    const reading = method === 'GET' || method === 'HEAD';
    if (info.group === '' && info.resource === 'secrets') {
      if (reading && info.namespace !== undefined && info.namespace !== joinTokenNamespace) return;
      if (reading && info.name !== undefined && !isCredentialSecretName(info.name)) return;
      throw forbid(`a node credential reads Secrets, but not the join tokens and node credentials of ${joinTokenNamespace} (so it lists neither ${joinTokenNamespace}'s Secrets nor all namespaces'), and writes none`);
    }
    if (reading) return;
    const creating = method === 'POST' && info.name === undefined;
    const named = info.name !== undefined && info.namespace !== undefined ? { namespace: info.namespace, name: info.name } : info.name !== undefined ? { namespace: undefined, name: info.name } : undefined;
    const core = info.group === '';
    if (core && info.resource === 'nodes') {
      if (info.name !== undefined && info.name !== node) throw forbid(`a node credential acts only on its own Node (${node})`);
      return;
    }
    if (info.group === 'coordination.k8s.io' && info.resource === 'leases' && info.namespace === nodeLeaseNamespace) {
      if (info.name !== undefined && info.name !== node) throw forbid(`a node credential renews only its own Lease (${nodeLeaseNamespace}/${node})`);
      return;
    }
    if ((core || info.group === 'events.k8s.io') && info.resource === 'events') {
      if (method === 'DELETE') throw forbid('a node credential creates and updates Events, but does not delete them');
      return;
    }
    if (creating) {
      // Creates are checked on their body (admitCreate): only a PersistentVolume of its node among these.
      if (core && info.resource === 'persistentvolumes') return;
      throw forbid(info.group === 'kubevirt.io' && info.resource === 'virtualmachineinstances' ? 'a node agent does not create VMIs or act on all of them at once' : whatNodesWrite);
    }
    if (named === undefined) throw forbid(`a node credential does not act on all ${info.resource} at once`);
    if (info.group === 'kubevirt.io' && info.resource === 'virtualmachineinstances') {
      const vmi = await this.get(info, named.namespace, named.name);
      const boundTo = vmi === undefined ? undefined : stringAt(vmi, 'status', 'nodeName');
      if (vmi !== undefined && boundTo !== node) throw forbid(`the VMI is ${boundTo === undefined ? 'not bound to a node' : `bound to node ${boundTo}`}; a node credential acts only on the VMIs bound to its node`);
      return;
    }
    if (core && info.resource === 'persistentvolumes') {
      const pv = await this.get(info, undefined, named.name);
      const pinned = pv === undefined ? node : volumeNode(pv);
      if (pinned !== node) throw forbid(`the volume is ${pinned === undefined ? 'pinned to no node' : `pinned to node ${pinned}`}; a node credential writes only the PersistentVolumes of its node`);
      return;
    }
    if (core && info.resource === 'persistentvolumeclaims') {
      if (method === 'DELETE') throw forbid('a node credential does not delete claims');
      const pvc = await this.get(info, named.namespace, named.name);
      if (pvc === undefined) return;
      const volumeName = stringAt(pvc, 'spec', 'volumeName');
      const pv = volumeName === undefined ? undefined : await this.lookup('', 'v1', 'persistentvolumes', undefined, volumeName);
      const where = claimNode(pvc, pv);
      if (where !== undefined && where !== node) throw forbid(`the claim's data is on node ${where}; a node credential writes only the claims of its node (or of no node yet)`);
      return;
    }
    if (info.group === snapshotGroup && info.resource === 'volumesnapshotcontents') {
      if (method === 'DELETE') throw forbid('a node credential does not delete VolumeSnapshotContents (its sidecar releases their finalizer)');
      const content = await this.get(info, undefined, named.name);
      if (content === undefined) return;
      const where = await this.snapshotContentNode(content);
      if (where !== node) throw forbid(`the snapshot is ${where === undefined ? 'on no node yet' : `on node ${where}`}; a node credential writes only the VolumeSnapshotContents of its node`);
      return;
    }
    throw forbid(whatNodesWrite);
  }

  /** The create-time half (NodeRestriction admission), on the decoded body: its own Node and Lease, PersistentVolumes of its node. */
  admitCreate(node: string, info: ResourceRequestInfo, input: unknown): void {
    const name = isPlainObject(input) && isPlainObject(input.metadata) && typeof input.metadata.name === 'string' ? input.metadata.name : undefined;
    const forbid = (why: string): ApiError =>
      new ApiError('Forbidden', `node ${node} may not create ${info.resource} ${name ?? '(unnamed)'}: ${why}`, { details: { kind: info.resource, ...(name === undefined ? {} : { name }) } });
    const own = (info.group === '' && info.resource === 'nodes') || (info.group === 'coordination.k8s.io' && info.resource === 'leases' && info.namespace === nodeLeaseNamespace);
    if (own && name !== node) throw forbid(`a node credential creates only its own (${node})`);
    if (info.group === '' && info.resource === 'persistentvolumes') {
      const pinned = isPlainObject(input) ? volumeNode(input as KObject) : undefined;
      if (pinned !== node) throw forbid(`the volume is ${pinned === undefined ? 'pinned to no node' : `pinned to node ${pinned}`}; a node credential creates only PersistentVolumes pinned to its node (spec.nodeAffinity on kubernetes.io/hostname)`);
    }
  }

  /**
   * A node reads a volume export (on the server's port) only for a copy into
   * a claim of its own node: the target claim (by uid) must be bound to a
   * volume on the node, or be waiting for one there.
   */
  async authorizeExport(node: string, targetUid: string): Promise<void> {
    const pvcs = this.def('', 'v1', 'persistentvolumeclaims');
    const claim = (await this.options.objects.list(pvcs, undefined)).items.find((pvc) => pvc.metadata.uid === targetUid);
    const volumeName = claim === undefined ? undefined : stringAt(claim, 'spec', 'volumeName');
    const pv = volumeName === undefined ? undefined : await this.lookup('', 'v1', 'persistentvolumes', undefined, volumeName);
    const where = claim === undefined ? undefined : claimNode(claim, pv);
    if (where !== node) {
      throw new ApiError('Forbidden', `node ${node} may not read the volume export for target ${targetUid}: ${exportTargetWhere(claim, where)}; a node credential reads only the exports copied into claims of its own node`);
    }
  }

  /** The node of a snapshot: its handle's, else (not cut yet) its source volume's. */
  private async snapshotContentNode(content: KObject): Promise<string | undefined> {
    const handle = parseSnapshotHandle(stringAt(content, 'status', 'snapshotHandle') ?? stringAt(content, 'spec', 'source', 'snapshotHandle'));
    if (handle !== undefined) return handle.node;
    const pvName = stringAt(content, 'spec', 'source', 'volumeHandle');
    const pv = pvName === undefined ? undefined : await this.lookup('', 'v1', 'persistentvolumes', undefined, pvName);
    return pv === undefined ? undefined : volumeNode(pv);
  }

  private get(info: ResourceRequestInfo, namespace: string | undefined, name: string): Promise<KObject | undefined> {
    return this.lookup(info.group, info.version, info.resource, namespace, name);
  }

  private async lookup(group: string, version: string, resource: string, namespace: string | undefined, name: string): Promise<KObject | undefined> {
    const def = this.options.registry.lookup(group, version, resource);
    return def === undefined ? undefined : this.options.objects.tryGet(def, namespace, name);
  }

  private def(group: string, version: string, resource: string): NonNullable<ReturnType<ResourceRegistry['lookup']>> {
    const def = this.options.registry.lookup(group, version, resource);
    if (def === undefined) throw new Error(`the registry has no ${group === '' ? '' : `${group}/`}${version} ${resource}`);
    return def;
  }
}

/** The names of the Secrets that hold join tokens and node credentials. */
function isCredentialSecretName(name: string): boolean {
  return name.startsWith(bootstrapTokenPrefix) || name.startsWith(nodeCredentialSecretPrefix);
}

function verbOf(method: string, info: ResourceRequestInfo): string {
  const verbs: Record<string, string> = { GET: 'read', HEAD: 'read', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
  return `${verbs[method] ?? method}${info.subresource === undefined ? '' : ` the ${info.subresource} of`}`;
}

function pathOf(info: ResourceRequestInfo): string {
  const where = info.namespace === undefined ? '' : `${info.namespace}/`;
  return `${info.resource}${info.group === '' ? '' : `.${info.group}`} ${where}${info.name ?? '(all)'}`;
}
