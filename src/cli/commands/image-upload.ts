/**
 * `vireo image-upload dv|pvc NAME --image-path FILE --size SIZE …`, as
 * virtctl's image-upload does it: create the DataVolume (or PVC) to upload
 * into, wait until it is ready to receive, get an upload token
 * (UploadTokenRequest), stream the file to the upload proxy (on the API
 * server's port, CDIConfig's `status.uploadProxyURL`) with a progress bar,
 * and wait until the node has processed the image.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { ApiError } from '../../api/errors.js';
import type { KObject } from '../../api/object.js';
import { recordAt, stringAt } from '../../api/kinds/read.js';
import { errorFromResponse, resources } from '../../client/index.js';
import type { HttpClient } from '../../client/index.js';
import { cdiAnnotations } from '../../storage/import/index.js';
import { CliError } from '../errors.js';
import { clientFor, connectionFor, connectionFlags } from './connection.js';
import type { Connection } from './connection.js';
import { Progress } from './progress.js';

export const imageUploadUsage = `  image-upload dv|pvc NAME --image-path FILE --size SIZE [--storage-class C]
                         [--access-mode M] [--volume-mode filesystem|block] [--no-create]
                         [--force-bind] [--uploadproxy-url URL] [--insecure] [--wait-secs S]
                         Upload a local disk image (qcow2, raw, vmdk, vdi, vhd(x), .gz, .xz) into a
                         new DataVolume (or PVC); --no-create uploads into an existing one.
`;

const uploadTokenRequests = { group: 'upload.cdi.kubevirt.io', version: 'v1beta1', plural: 'uploadtokenrequests', namespaced: true } as const;
const cdiConfigs = { group: 'cdi.kubevirt.io', version: 'v1beta1', plural: 'cdiconfigs', namespaced: false } as const;

interface Options {
  kind: 'dv' | 'pvc';
  name: string;
  imagePath: string;
  size: string | undefined;
  storageClass: string | undefined;
  accessMode: string | undefined;
  volumeMode: 'Filesystem' | 'Block' | undefined;
  noCreate: boolean;
  forceBind: boolean;
  uploadProxyUrl: string | undefined;
  insecure: boolean;
  waitMs: number;
}

function parse(args: string[]): { options: Options; connection: Connection } {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...connectionFlags,
      'image-path': { type: 'string' },
      size: { type: 'string' },
      'storage-class': { type: 'string' },
      'access-mode': { type: 'string' },
      'volume-mode': { type: 'string' },
      'no-create': { type: 'boolean' },
      'force-bind': { type: 'boolean' },
      'uploadproxy-url': { type: 'string' },
      insecure: { type: 'boolean' },
      'wait-secs': { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [kind, name, ...extra] = positionals;
  if ((kind !== 'dv' && kind !== 'pvc') || name === undefined || extra.length > 0) {
    throw new CliError('usage', 'usage: vireo image-upload dv|pvc NAME --image-path FILE --size SIZE (run "vireo help" for the flags)');
  }
  const imagePath = values['image-path'];
  if (imagePath === undefined || imagePath === '') throw new CliError('usage', 'vireo image-upload needs --image-path FILE: the local disk image to upload');
  const mode = values['volume-mode']?.toLowerCase();
  if (mode !== undefined && mode !== 'filesystem' && mode !== 'block') throw new CliError('usage', `--volume-mode ${values['volume-mode'] ?? ''} is not valid: use filesystem or block`);
  if (values['access-mode'] === 'ReadOnlyMany') throw new CliError('usage', 'cannot upload to a readonly volume, use either ReadWriteOnce or ReadWriteMany');
  const waitSecs = Number(values['wait-secs'] ?? '300');
  if (!Number.isFinite(waitSecs) || waitSecs <= 0) throw new CliError('usage', `--wait-secs ${values['wait-secs'] ?? ''} is not a positive number of seconds`);
  return {
    options: {
      kind,
      name,
      imagePath,
      size: values.size,
      storageClass: values['storage-class'],
      accessMode: values['access-mode'],
      volumeMode: mode === undefined ? undefined : mode === 'block' ? 'Block' : 'Filesystem',
      noCreate: values['no-create'] === true,
      forceBind: values['force-bind'] === true,
      uploadProxyUrl: values['uploadproxy-url'],
      insecure: values.insecure === true,
      waitMs: waitSecs * 1000,
    },
    connection: connectionFor(values),
  };
}

/** Runs `vireo image-upload`. */
export async function runImageUpload(args: string[]): Promise<void> {
  const { options, connection } = parse(args);
  let bytes: number;
  try {
    const info = await stat(options.imagePath);
    if (!info.isFile()) throw new Error('it is not a regular file');
    bytes = info.size;
  } catch (err) {
    throw new CliError('not-found', `failed to open image file ${options.imagePath}: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  const client = clientFor(connection);
  try {
    await prepareTarget(client, connection.namespace, options);
    await waitReady(client, connection.namespace, options);
    const proxy = options.uploadProxyUrl ?? (await publishedProxyUrl(client)) ?? connection.server;
    const base = /^[a-z]+:\/\//i.test(proxy) ? proxy.replace(/\/+$/, '') : `https://${proxy}`;
    out(`Uploading data to ${base}`);
    const token = await uploadToken(client, connection.namespace, options.name);
    await send(base, token, options, bytes, connection.caCert);
    out('Uploading data completed successfully, waiting for processing to complete, you can hit ctrl-c without interrupting the progress');
    await waitProcessed(client, connection.namespace, options.name);
    out(`Uploading ${options.imagePath} completed successfully`);
  } finally {
    client.close();
  }
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Creates the DataVolume or PVC, or checks the existing one with --no-create. */
async function prepareTarget(client: HttpClient, namespace: string, options: Options): Promise<void> {
  const pvc = await client.tryGet(resources.persistentVolumeClaims, namespace, options.name);
  const dv = options.kind === 'dv' ? await client.tryGet(resources.dataVolumes, namespace, options.name) : undefined;
  const existing = options.kind === 'dv' ? dv : pvc;
  if (existing !== undefined) {
    const what = options.kind === 'dv' ? 'DataVolume' : 'PVC';
    if (!options.noCreate) throw new ApiError('AlreadyExists', `${what} ${namespace}/${options.name} already exists: upload into it with --no-create, or choose another name`);
    if (pvc?.metadata.annotations?.[cdiAnnotations.podPhase] === 'Succeeded') throw new ApiError('Conflict', `PVC ${options.name} already successfully imported/cloned/updated`);
    if (options.kind === 'pvc' && pvc !== undefined && pvc.metadata.annotations?.[cdiAnnotations.uploadTarget] === undefined) {
      await client.patch(resources.persistentVolumeClaims, namespace, options.name, 'merge', { metadata: { annotations: { [cdiAnnotations.uploadTarget]: '' } } });
    }
    if (options.kind === 'dv' && dv !== undefined && recordAt(dv, 'spec', 'source', 'upload') === undefined) {
      throw new ApiError('BadRequest', `DataVolume ${namespace}/${options.name} does not take uploads (its spec.source is not upload: {})`);
    }
    out(`Using existing ${options.kind === 'dv' ? 'DataVolume' : 'PVC'} ${namespace}/${options.name}`);
    return;
  }
  if (options.noCreate) throw new CliError('not-found', `${options.kind === 'dv' ? 'DataVolume' : 'PVC'} ${namespace}/${options.name} not found: drop --no-create to create it (with --size)`);
  if (options.size === undefined || options.size === '') throw new CliError('usage', 'when creating a resource, the size must be specified: add --size, e.g. --size 2Gi');
  if (options.storageClass !== undefined && (await client.tryGet(resources.storageClasses, undefined, options.storageClass)) === undefined) {
    throw new CliError('not-found', `StorageClass ${options.storageClass} not found: list them with kubectl get storageclass`);
  }
  const storage: Record<string, unknown> = { resources: { requests: { storage: options.size } } };
  if (options.storageClass !== undefined) storage.storageClassName = options.storageClass;
  if (options.accessMode !== undefined) storage.accessModes = [options.accessMode];
  if (options.volumeMode !== undefined) storage.volumeMode = options.volumeMode;
  const annotations: Record<string, string> = options.forceBind ? { [cdiAnnotations.bindImmediate]: '' } : {};
  if (options.kind === 'dv') {
    await client.create(resources.dataVolumes, {
      apiVersion: 'cdi.kubevirt.io/v1beta1',
      kind: 'DataVolume',
      metadata: { name: options.name, namespace, annotations },
      spec: { source: { upload: {} }, contentType: 'kubevirt', storage },
    });
    out(`DataVolume ${namespace}/${options.name} created`);
    return;
  }
  await client.create(resources.persistentVolumeClaims, {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: options.name, namespace, annotations: { ...annotations, [cdiAnnotations.uploadTarget]: '', [cdiAnnotations.contentType]: 'kubevirt' } },
    spec: { accessModes: [options.accessMode ?? 'ReadWriteOnce'], ...storage },
  });
  out(`PersistentVolumeClaim ${namespace}/${options.name} created`);
}

/** Waits for UploadReady (a DataVolume) or the PVC's `storage.pod.ready`, as virtctl does. */
async function waitReady(client: HttpClient, namespace: string, options: Options): Promise<void> {
  const deadline = Date.now() + options.waitMs;
  let logged = false;
  for (;;) {
    let ready: boolean;
    if (options.kind === 'dv') {
      const dv = await client.tryGet(resources.dataVolumes, namespace, options.name);
      const phase = stringAt(dv, 'status', 'phase');
      if (phase === 'WaitForFirstConsumer' && !options.forceBind) throw new ApiError('Conflict', `cannot upload to DataVolume in ${phase} phase, make sure the PVC is Bound, or use force-bind flag`);
      if (phase === 'Succeeded') throw new ApiError('Conflict', `PVC ${options.name} already successfully imported/cloned/updated`);
      ready = phase === 'UploadReady';
    } else {
      const pvc = await client.tryGet(resources.persistentVolumeClaims, namespace, options.name);
      ready = pvc?.metadata.annotations?.[cdiAnnotations.podReady] === 'true';
    }
    if (ready) {
      if (logged) out('Pod now ready');
      return;
    }
    if (!logged) out(`Waiting for PVC ${options.name} upload pod to be ready...`);
    logged = true;
    if (Date.now() > deadline) throw new CliError('unavailable', `PVC ${namespace}/${options.name} was not ready for an upload within ${options.waitMs / 1000} s: check its DataVolume's conditions and events (kubectl describe dv ${options.name})`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** CDIConfig `config`'s `status.uploadProxyURL`, when the server publishes one. */
async function publishedProxyUrl(client: HttpClient): Promise<string | undefined> {
  const config: KObject | undefined = await client.tryGet(cdiConfigs, undefined, 'config').catch(() => undefined);
  const url = stringAt(config, 'status', 'uploadProxyURL');
  return url === undefined || url === '' ? undefined : url;
}

async function uploadToken(client: HttpClient, namespace: string, name: string): Promise<string> {
  const response = await client.create(uploadTokenRequests, {
    apiVersion: 'upload.cdi.kubevirt.io/v1beta1',
    kind: 'UploadTokenRequest',
    metadata: { name: 'token-for-vireo', namespace },
    spec: { pvcName: name },
  });
  const token = stringAt(response, 'status', 'token');
  if (token === undefined || token === '') throw new ApiError('InternalError', 'the server answered the UploadTokenRequest without status.token');
  return token;
}

/** Streams the file to `base`/v1beta1/upload-async with a progress display. */
async function send(base: string, token: string, options: Options, bytes: number, caCert: string): Promise<void> {
  const progress = new Progress(bytes, process.stdout);
  const counter = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      progress.add(chunk.length);
      callback(null, chunk);
    },
  });
  const url = new URL(`${base}/v1beta1/upload-async`);
  const answer = await new Promise<{ code: number; body: string }>((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': String(bytes) },
      ...(options.insecure ? { rejectUnauthorized: false } : { ca: caCert }),
    }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => { resolve({ code: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }); });
      res.on('error', reject);
    });
    req.on('error', (err) => { reject(new CliError('unavailable', `cannot upload to ${url.origin}: ${err.message}; check --uploadproxy-url and that the server runs`, err)); });
    pipeline(createReadStream(options.imagePath, { highWaterMark: 1 << 20 }), counter, req).catch((err: unknown) => { req.destroy(err instanceof Error ? err : new Error(String(err))); });
  });
  progress.finish();
  if (answer.code === 200) return;
  const refused = errorFromResponse(answer.code, answer.body);
  throw new ApiError(refused.reason, `the upload proxy refused the upload (${answer.code}): ${refused.message}`, { cause: refused });
}

/** Waits for the node to finish processing (`storage.pod.phase` Succeeded); a failure ends the wait with its cause. */
async function waitProcessed(client: HttpClient, namespace: string, name: string): Promise<void> {
  for (;;) {
    const pvc = await client.tryGet(resources.persistentVolumeClaims, namespace, name);
    const annotations = pvc?.metadata.annotations ?? {};
    const phase = annotations[cdiAnnotations.podPhase];
    if (phase === 'Succeeded') {
      out('Processing completed successfully');
      return;
    }
    if (phase === 'Failed' || (phase === 'Running' && annotations[cdiAnnotations.runningReason] === 'Error')) {
      throw new ApiError('BadRequest', `processing the upload failed: ${annotations[cdiAnnotations.runningMessage] ?? 'see kubectl describe dv'}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
