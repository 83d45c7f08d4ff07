/**
 * The target side of a volume copy across nodes (CDI's host-assisted
 * clone, without its pods): a claim the provisioner marked as a copy
 * (`cdi.kubevirt.io/cloneType: copy`; its source a claim, by
 * `k8s.io/CloneRequest` or `dataSource`, or a VolumeSnapshot) is imported over HTTPS from the export route of the agent holding
 * the source (`GET …/persistentvolumeclaims/NAME/export?target=UID`), so
 * the copy gets the importer's byte-range resume, format check, progress
 * and retries. The source agent is found from the source claim's volume
 * and that node's published endpoint; its certificate is pinned, and this
 * agent presents the cluster token (a joined agent: its node credential, which the source checks with a TokenReview). The agent inside `vireo server`
 * publishes no endpoint: its exports are fetched from the API server's
 * port (`src/apiserver/volume-export.ts`), trusted through the cluster CA. Once the copy is in, the export is
 * released.
 */
import { request } from 'node:https';
import type { KObject } from '../../api/object.js';
import { stringAt } from '../../api/kinds/read.js';
import { endpointOfNode, publishesEndpoint } from '../../agent/endpoint-address.js';
import { agentRequestPath, serverExportPath } from '../../agent/endpoint-api.js';
import type { Client } from '../../client/index.js';
import { resources } from '../../client/index.js';
import { httpsUrl } from '../../net/listen.js';
import { pinnedTls } from '../../net/pinned-tls.js';
import { volumeNode } from '../local/index.js';
import { claimDataSource } from '../snapshots/data-source.js';
import type { ExportSource } from '../snapshots/export.js';
import { parseSnapshotHandle } from '../snapshots/handle.js';
import { cloneTypeAnnotation } from '../snapshots/names.js';
import { volumeSnapshotContents, volumeSnapshots } from '../snapshots/resources.js';
import { ImportError } from './errors.js';
import type { HttpSource } from './http.js';

/** The source (a claim, or a VolumeSnapshot of the claim's namespace) of a copy across nodes; undefined when `pvc` is not one. */
export function copySourceOf(pvc: KObject): ExportSource | undefined {
  if (pvc.metadata.annotations?.[cloneTypeAnnotation] !== 'copy') return undefined;
  const source = claimDataSource(pvc);
  if (source === undefined || 'unsupported' in source) return undefined;
  const namespace = source.kind === 'PersistentVolumeClaim' ? (source.namespace ?? pvc.metadata.namespace ?? '') : (pvc.metadata.namespace ?? '');
  return { kind: source.kind, namespace, name: source.name };
}

/** The node holding the data of `source`; an ImportError when it is not known (yet). */
async function nodeOf(client: Client, source: ExportSource): Promise<string> {
  const what = `the source ${source.kind} ${source.namespace}/${source.name}`;
  if (source.kind === 'VolumeSnapshot') {
    const snapshot = await client.tryGet(volumeSnapshots, source.namespace, source.name);
    if (snapshot === undefined) throw new ImportError('NotFound', `${what} does not exist: the restore cannot be made; delete this claim (or DataVolume) and restore from an existing snapshot`, false);
    const contentName = stringAt(snapshot, 'status', 'boundVolumeSnapshotContentName') ?? '';
    const content = contentName === '' ? undefined : await client.tryGet(volumeSnapshotContents, undefined, contentName);
    const handle = parseSnapshotHandle(stringAt(content, 'status', 'snapshotHandle'));
    if (handle === undefined) throw new ImportError('Unreachable', `${what} is not ready yet; the copy starts once it is`, true);
    return handle.node;
  }
  const claim = await client.tryGet(resources.persistentVolumeClaims, source.namespace, source.name);
  if (claim === undefined) throw new ImportError('NotFound', `${what} does not exist: the copy cannot be made; delete this claim (or DataVolume) and clone from an existing claim`, false);
  const volumeName = stringAt(claim, 'spec', 'volumeName') ?? '';
  const pv = volumeName === '' ? undefined : await client.tryGet(resources.persistentVolumes, undefined, volumeName);
  const node = pv === undefined ? undefined : volumeNode(pv);
  if (node === undefined) throw new ImportError('Unreachable', `${what} is not bound to a local volume yet; the copy starts once it is`, true);
  return node;
}

/** How this agent reaches the agent holding a copy's source. */
export interface CopyAccess {
  /** The cluster token, presented to the source's agent. */
  token: string | undefined;
  /** The API server, which serves the exports of its own node's agent (a node that publishes no endpoint). */
  apiServer?: { url: string; caCert: string };
}

/** The HTTPS source that copies the volume of `source` into `pvc` from the agent holding it. */
export async function copySource(client: Client, pvc: KObject, source: ExportSource, access: CopyAccess): Promise<HttpSource> {
  const what = `the source ${source.kind} ${source.namespace}/${source.name}`;
  const { token, apiServer } = access;
  if (token === undefined) throw new ImportError('Unsupported', `this node agent has no token to present to the agent holding ${what} (neither the cluster token nor a node credential): run it with the kubeconfig vireo server wrote, or join it with a token`, false);
  const node = await nodeOf(client, source);
  const of = source.kind === 'VolumeSnapshot' ? 'volumesnapshots' : 'persistentvolumeclaims';
  const target = `?target=${encodeURIComponent(pvc.metadata.uid ?? '')}`;
  const headers = [`Authorization: Bearer ${token}`];
  const nodeObject = await client.tryGet(resources.nodes, undefined, node);
  if (!publishesEndpoint(nodeObject) && apiServer !== undefined) {
    // The agent inside vireo server: its exports are on the API server's port.
    return { kind: 'http', url: `${apiServer.url}${serverExportPath(node, of, source.namespace, source.name)}${target}`, caBundle: apiServer.caCert, extraHeaders: headers };
  }
  let endpoint;
  try {
    endpoint = endpointOfNode(node, nodeObject);
  } catch (err) {
    throw new ImportError('Unreachable', `cannot copy ${what} from node ${node}: ${err instanceof Error ? err.message : String(err)}`, true, { cause: err });
  }
  const path = agentRequestPath(source.namespace, source.name, { kind: 'export', of });
  return { kind: 'http', url: `${httpsUrl(endpoint.address, endpoint.port)}${path}${target}`, pinnedCertificate: endpoint.certificate, extraHeaders: headers };
}

/** Tells the source agent the copy is in, so it drops its export; a failure only leaves a file behind, so it is returned, not thrown. */
export async function releaseCopy(source: HttpSource): Promise<Error | undefined> {
  const authorization = (source.extraHeaders ?? []).find((h) => h.toLowerCase().startsWith('authorization:'))?.slice('authorization:'.length).trim() ?? '';
  const trust = source.pinnedCertificate !== undefined ? pinnedTls(source.pinnedCertificate) : source.caBundle === undefined ? {} : { ca: source.caBundle };
  return new Promise((resolve) => {
    const req = request(source.url, { method: 'DELETE', headers: { authorization }, timeout: 30_000, ...trust }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve(code >= 200 && code < 300 ? undefined : new Error(`the source agent answered ${code} to the release of ${source.url}`));
    });
    req.on('timeout', () => { req.destroy(new Error('no answer within 30 s')); });
    req.on('error', resolve);
    req.end();
  });
}
