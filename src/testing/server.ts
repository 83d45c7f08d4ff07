/**
 * A real control plane for tests: the API server in-process on a store of
 * the test's choice (memory by default), HTTPS with a real CA from openssl,
 * and a kubeconfig on disk for kubectl and client-node.
 */
import { randomInt } from 'node:crypto';
import { parseCidr } from '../net/pod/cidr.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:https';
import { ensurePki } from '../cli/pki.js';
import { OpenSslIssuer } from '../net/certificate-issuer.js';
import type { CertificateIssuer } from '../net/certificate-issuer.js';
import type { Pki } from '../cli/pki.js';
import { renderKubeconfig } from '../cli/kubeconfig.js';
import { startControlPlane } from '../server/control-plane.js';
import type { ControlPlane } from '../server/control-plane.js';
import { openStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { silentLogger } from '../log/logger.js';
import type { ServiceNetwork } from '../apiserver/index.js';

export interface TestServer {
  plane: ControlPlane;
  store: Store;
  url: string;
  /** The users' token (the kubeconfig's). */
  token: string;
  /** The token of Vireo's own components, for tests that act as a controller or agent would. */
  componentToken: string;
  dir: string;
  kubeconfig: string;
  pki: Pki;
  /** A raw HTTPS request to the server with the token (unless `token: null`). */
  fetch(method: string, path: string, options?: RawRequestOptions): Promise<RawResponse>;
  stop(): Promise<void>;
}

export interface RawRequestOptions {
  body?: string | Buffer;
  headers?: Record<string, string>;
  /** Override the bearer token; null sends none. */
  token?: string | null;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json(): unknown;
}

let sharedPki: { dir: string; pki: Pki } | undefined;

/** One CA + serving cert per test process: openssl is slow enough to matter when every test starts a server. */
async function testPki(): Promise<Pki> {
  if (sharedPki === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'vireo-pki-'));
    sharedPki = { dir, pki: await ensurePki(dir, ['127.0.0.1']) };
    process.once('exit', () => { rmSync(dir, { recursive: true, force: true }); });
  }
  return sharedPki.pki;
}

/** An issuer on the test process's CA (the test servers' own): for a migration controller made by a test. */
export async function testCertificateIssuer(): Promise<CertificateIssuer> {
  await testPki();
  const dir = sharedPki?.dir;
  if (dir === undefined) throw new Error('the test PKI was not made');
  return new OpenSslIssuer({ certFile: join(dir, 'ca.crt'), keyFile: join(dir, 'ca.key') });
}

export interface TestServerOptions {
  store?: Store;
  /** Run the VM controllers and scheduler (off by default: most API tests set statuses by hand). */
  controllers?: boolean;
  /** Run a node agent for this host (TCG, files in the test's temp dir). */
  agent?: boolean;
  /** Serve the cluster DNS on 127.0.0.1, at a free port (`true`, see `plane.dns.address`) or the one given. */
  clusterDns?: true | { port: number; optional?: boolean };
  /** The Service ranges (default 10.96.0.0/12 and 30000-32767). */
  serviceNetwork?: ServiceNetwork;
  /** The node agent's metrics text the server appends to `/metrics`. */
  nodeMetrics?: () => Promise<string>;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-test-'));
  const pki = await testPki();
  const store = options.store ?? (await openStore({ backend: 'memory' }));
  const token = randomBytes(16).toString('hex');
  const componentToken = randomBytes(16).toString('hex');
  let plane: ControlPlane;
  try {
    plane = await startControlPlane({
      store,
      tls: { cert: pki.serverCert, key: pki.serverKey },
      caCert: pki.caCert,
      certificates: new OpenSslIssuer({ certFile: join(sharedPki?.dir ?? dir, 'ca.crt'), keyFile: join(sharedPki?.dir ?? dir, 'ca.key') }),
      token,
      componentToken,
      logger: silentLogger,
      host: '127.0.0.1',
      port: 0,
      controllers: options.controllers ?? false,
      // Test servers run side by side on one host: each gets its own pod ranges, so their node bridges never share a subnet.
      clusterCidrs: [parseCidr(`10.${200 + randomInt(40)}.${randomInt(256)}.0/24`), parseCidr(`fd00:${randomInt(65_536).toString(16)}:${randomInt(65_536).toString(16)}::/64`)],
      ...(options.serviceNetwork === undefined ? {} : { serviceNetwork: options.serviceNetwork }),
      ...(options.nodeMetrics === undefined ? {} : { nodeMetrics: options.nodeMetrics }),
      ...(options.clusterDns === undefined ? {} : { clusterDns: { host: '127.0.0.1', ...(options.clusterDns === true ? { port: 0 } : options.clusterDns) } }),
      ...(options.agent === true ? { agent: { dataDir: join(dir, 'node'), nodeName: 'test-node', facts: { accel: 'tcg' }, stopGuests: true } } : {}),
    });
  } catch (err) {
    // A server that did not start leaves nothing behind.
    if (options.store === undefined) await store.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const url = `https://127.0.0.1:${plane.address.port}`;
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, renderKubeconfig({ server: url, caCert: pki.caCert, token }), { mode: 0o600 });
  const agent = new Agent({ ca: pki.caCert, keepAlive: true });
  return {
    plane,
    store,
    url,
    token,
    componentToken,
    dir,
    kubeconfig,
    pki,
    fetch: (method, path, opts = {}) => rawRequest(agent, url, token, method, path, opts),
    async stop() {
      agent.destroy();
      await plane.stop();
      if (options.store === undefined) await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function rawRequest(agent: Agent, base: string, token: string, method: string, path: string, opts: RawRequestOptions): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    const bearer = opts.token === undefined ? token : opts.token;
    if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
    if (opts.body !== undefined) {
      headers['content-length'] = String(Buffer.byteLength(opts.body));
      headers['content-type'] ??= 'application/json';
    }
    const req = request(new URL(path, base), { method, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) as unknown });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}
