/**
 * The import a PVC's CDI annotations ask for, with the Secrets and
 * ConfigMaps they name read from the API: basic-auth credentials
 * (`accessKeyId`/`secretKey`, as CDI's endpoint Secret has them), the CA
 * bundle, extra headers (plain and from Secrets), the checksum.
 */
import type { KObject } from '../../api/object.js';
import { stringMapAt } from '../../api/kinds/read.js';
import type { ImagePuller } from '../../agent/images/index.js';
import type { Client } from '../../client/index.js';
import { resources } from '../../client/index.js';
import { cdiAnnotations, extraHeadersOf, importSources } from './annotations.js';
import { ImportError } from './errors.js';
import type { ImportSource } from './types.js';

/** The import source of `pvc`, or undefined when its annotations ask for none this node can run. */
export async function sourceOfPvc(client: Client, pvc: KObject, puller: ImagePuller | undefined): Promise<ImportSource | undefined> {
  const annotations = pvc.metadata.annotations ?? {};
  const namespace = pvc.metadata.namespace ?? 'default';
  const kind = annotations[cdiAnnotations.source];
  const endpoint = annotations[cdiAnnotations.endpoint] ?? '';
  const secretName = annotations[cdiAnnotations.secretName];
  switch (kind) {
    case importSources.none:
      return { kind: 'blank' };
    case importSources.http: {
      const caName = annotations[cdiAnnotations.certConfigMap];
      const secretHeaders: string[] = [];
      for (const name of extraHeadersOf(annotations, cdiAnnotations.secretExtraHeaders)) {
        secretHeaders.push(...Object.values(await secretData(client, namespace, name, 'secretExtraHeaders')));
      }
      const headers = [...extraHeadersOf(annotations), ...secretHeaders];
      const checksum = annotations[cdiAnnotations.checksum];
      return {
        kind: 'http',
        url: endpoint,
        ...(secretName === undefined || secretName === '' ? {} : { basicAuth: await credentials(client, namespace, secretName) }),
        ...(caName === undefined || caName === '' ? {} : { caBundle: await caBundle(client, namespace, caName) }),
        ...(annotations[cdiAnnotations.insecureSkipVerify] === 'true' ? { insecureSkipVerify: true } : {}),
        ...(headers.length === 0 ? {} : { extraHeaders: headers }),
        ...(checksum === undefined || checksum === '' ? {} : { checksum }),
      };
    }
    case importSources.registry: {
      if (puller === undefined) throw new ImportError('Unsupported', 'this node has no image store to pull registry DataVolumes with: run the import on a node with an agent', false);
      return {
        kind: 'registry',
        image: endpoint,
        puller,
        ...(secretName === undefined || secretName === '' ? {} : { credentials: await credentials(client, namespace, secretName) }),
      };
    }
    default:
      return undefined;
  }
}

async function secretData(client: Client, namespace: string, name: string, field: string): Promise<Record<string, string>> {
  const secret = await client.tryGet(resources.secrets, namespace, name);
  if (secret === undefined) throw new ImportError('Unauthorized', `Secret ${namespace}/${name} (named in ${field}) does not exist: create it, or fix the DataVolume`, true);
  const decoded: Record<string, string> = {};
  for (const [key, value] of Object.entries(stringMapAt(secret, 'data'))) decoded[key] = Buffer.from(value, 'base64').toString('utf8');
  return { ...decoded, ...stringMapAt(secret, 'stringData') };
}

async function credentials(client: Client, namespace: string, name: string): Promise<{ username: string; password: string }> {
  const data = await secretData(client, namespace, name, 'secretRef');
  const username = data.accessKeyId;
  const password = data.secretKey;
  if (username === undefined || password === undefined) {
    throw new ImportError('Unauthorized', `Secret ${namespace}/${name} has no accessKeyId and secretKey: CDI's endpoint Secret holds the user name in accessKeyId and the password in secretKey`, false);
  }
  return { username, password };
}

async function caBundle(client: Client, namespace: string, name: string): Promise<string> {
  const map = await client.tryGet(resources.configMaps, namespace, name);
  if (map === undefined) throw new ImportError('Unreachable', `ConfigMap ${namespace}/${name} (spec.source.http.certConfigMap) does not exist: create it with the server's CA certificate`, true);
  const certs = Object.values(stringMapAt(map, 'data')).filter((v) => v.includes('-----BEGIN CERTIFICATE-----'));
  if (certs.length === 0) throw new ImportError('Unreachable', `ConfigMap ${namespace}/${name} holds no PEM certificate: put the CA certificate in one of its keys, e.g. ca.pem`, false);
  return certs.join('\n');
}
