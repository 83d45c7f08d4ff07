/**
 * The PVC annotations through which the DataVolume controller asks for an
 * import and the node's import runner reports it: CDI's names
 * (`pkg/controller/common`), so tools that read CDI's PVCs read ours. The
 * progress annotation is Vireo's own: CDI scrapes its importer pod's
 * metrics instead; here the runner writes the percentage on the PVC.
 */

const group = 'cdi.kubevirt.io';

export const cdiAnnotations = {
  /** `http`, `registry`, `none` (blank), `upload`, or absent. */
  source: `${group}/storage.import.source`,
  endpoint: `${group}/storage.import.endpoint`,
  /** A Secret with `accessKeyId` and `secretKey` (basic auth / registry credentials). */
  secretName: `${group}/storage.import.secretName`,
  /** A ConfigMap whose values are PEM CA certificates trusted for the endpoint. */
  certConfigMap: `${group}/storage.import.certConfigMap`,
  /** Prefix of `…extraHeaders.<n>`: one `Name: value` header each, in order. */
  extraHeaders: `${group}/storage.import.extraHeaders`,
  /** Prefix of `…secretExtraHeaders.<n>`: Secrets whose values are extra headers. */
  secretExtraHeaders: `${group}/storage.import.secretExtraHeaders`,
  /** `algorithm:hex`, e.g. `sha256:…` (Vireo's name; CDI passes it to its importer pod directly). */
  checksum: `${group}/storage.import.checksum`,
  insecureSkipVerify: `${group}/storage.import.insecureSkipVerify`,
  registryImportMethod: `${group}/storage.import.registryImportMethod`,
  contentType: `${group}/storage.contentType`,
  preallocationRequested: `${group}/storage.preallocation.requested`,
  /** The importer's phase: `Pending`, `Running`, `Succeeded`, `Failed` (a pod phase in CDI). */
  podPhase: `${group}/storage.pod.phase`,
  podRestarts: `${group}/storage.pod.restarts`,
  runningCondition: `${group}/storage.condition.running`,
  runningReason: `${group}/storage.condition.running.reason`,
  runningMessage: `${group}/storage.condition.running.message`,
  boundCondition: `${group}/storage.condition.bound`,
  boundReason: `${group}/storage.condition.bound.reason`,
  boundMessage: `${group}/storage.condition.bound.message`,
  /** Vireo: the import's progress as a percentage number, e.g. `45.2`. */
  progress: `${group}/storage.import.progress`,
  /** CDI's upload server is ready to receive (`"true"`): what virtctl and the upload proxy wait for. */
  podReady: `${group}/storage.pod.ready`,
  /** Present (value `""`) on a PVC that receives an upload instead of running an import. */
  uploadTarget: `${group}/storage.upload.target`,
  /** virtctl's `--force-bind`: bind at once, even on a WaitForFirstConsumer class. */
  bindImmediate: `${group}/storage.bind.immediate.requested`,
  /** Kubernetes' annotation the scheduler sets on a WaitForFirstConsumer claim. */
  selectedNode: 'volume.kubernetes.io/selected-node',
} as const;

/** `storage.import.source` values. */
export const importSources = { http: 'http', registry: 'registry', none: 'none', upload: 'upload' } as const;

/** `storage.pod.phase` values. */
export const importPhases = { pending: 'Pending', running: 'Running', succeeded: 'Succeeded', failed: 'Failed' } as const;

/** The `Name: value` extra headers the annotations list, in index order. */
export function extraHeadersOf(annotations: Record<string, string>, prefix: string = cdiAnnotations.extraHeaders): string[] {
  return Object.entries(annotations)
    .map(([key, value]) => ({ index: key.startsWith(`${prefix}.`) ? Number(key.slice(prefix.length + 1)) : NaN, value }))
    .filter((e) => Number.isInteger(e.index))
    .sort((a, b) => a.index - b.index)
    .map((e) => e.value);
}
