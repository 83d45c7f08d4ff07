/**
 * `vireo server --store etcd://…` end to end: real kubectl creates, gets and
 * watches against a server whose state is in a real etcd; the state outlives
 * the server (a new server on a fresh data dir serves it); etcd down gives a
 * clear 503 and the server recovers when it is back; a bad `--store` is
 * refused as a usage error.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { EtcdProcess } from '../../src/store/etcd-process.js';
import { kubectl, kubectlBinary } from '../../src/testing/kubectl.js';
import { freePort, startServerProcess } from '../../src/testing/process.js';
import type { ServerProcess } from '../../src/testing/process.js';
import { Background } from './support.js';

const cliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

async function stopServer(server: ServerProcess | undefined): Promise<void> {
  if (server === undefined) return;
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGTERM');
  await server.exited;
}

describe('vireo server on etcd, with kubectl', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-etcd-server-'));
  let etcd: EtcdProcess;
  let first: ServerProcess | undefined;
  let second: ServerProcess | undefined;
  before(async () => {
    etcd = await EtcdProcess.start();
  });
  after(async () => {
    await stopServer(first);
    await stopServer(second);
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates, gets and watches through kubectl, and the state lives in etcd', async () => {
    first = await startServerProcess({ dataDir: join(dir, 'first'), port: await freePort(), store: etcd.storeUrl });
    const run = async (args: string[], kubeconfig: string): Promise<string> => {
      const result = await kubectl(args, { kubeconfig });
      assert.equal(result.code, 0, `kubectl ${args.join(' ')}: ${result.stderr}`);
      return result.stdout;
    };
    assert.equal(await run(['create', 'configmap', 'one', '--from-literal=k=v1'], first.kubeconfig), 'configmap/one created\n');
    const got = JSON.parse(await run(['get', 'configmap', 'one', '-o', 'json'], first.kubeconfig)) as { data: Record<string, string>; metadata: { resourceVersion: string } };
    assert.deepEqual(got.data, { k: 'v1' });

    const binary = kubectlBinary();
    assert.ok(binary !== undefined, 'kubectl is installed');
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dirname(first.kubeconfig), KUBECONFIG: first.kubeconfig };
    const watch = new Background(
      spawn(binary, ['get', 'configmaps', '--watch', '--output-watch-events', '-o', 'custom-columns=EVENT:.type,NAME:.object.metadata.name', '-v=6'], { env, stdio: ['ignore', 'pipe', 'pipe'] }),
      'kubectl get -w',
    );
    try {
      await watch.watching();
      await run(['create', 'configmap', 'two', '--from-literal=k=v2'], first.kubeconfig);
      await run(['patch', 'configmap', 'one', '-p', '{"data":{"k":"v1b"}}'], first.kubeconfig);
      await run(['delete', 'configmap', 'two'], first.kubeconfig);
      await watch.until('the added, modified and deleted events', (b) => /ADDED\s+two[\s\S]*MODIFIED\s+one[\s\S]*DELETED\s+two/.test(b.stdout));
    } finally {
      await watch.stop();
    }

    // The keys are etcd's, under the default prefix, as etcdctl sees them.
    const keys = execFileSync('etcdctl', ['--endpoints', etcd.endpoint, 'get', '--prefix', '--keys-only', '/vireo/'], { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' } });
    assert.match(keys, /^\/vireo\/.*configmaps\/default\/one$/m);
    await stopServer(first);

    // A new server with a fresh data dir (new certificates and token) serves the same state from etcd.
    second = await startServerProcess({ dataDir: join(dir, 'second'), port: await freePort(), store: etcd.storeUrl });
    const again = JSON.parse(await run(['get', 'configmap', 'one', '-o', 'json'], second.kubeconfig)) as { data: Record<string, string> };
    assert.deepEqual(again.data, { k: 'v1b' });
    assert.match((await kubectl(['get', 'configmap', 'two'], { kubeconfig: second.kubeconfig })).stderr, /not found/);

    // etcd gone: a clear 503 naming it; etcd back: the server serves again by itself.
    await etcd.kill();
    const refused = await kubectl(['create', 'configmap', 'three', '--from-literal=k=v3'], { kubeconfig: second.kubeconfig });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(`etcd at ${etcd.endpoint} did not answer`), refused.stderr);
    await etcd.restart();
    const deadline = Date.now() + 20_000;
    let created = await kubectl(['create', 'configmap', 'three', '--from-literal=k=v3'], { kubeconfig: second.kubeconfig });
    while (created.code !== 0 && Date.now() < deadline) {
      created = await kubectl(['create', 'configmap', 'three', '--from-literal=k=v3'], { kubeconfig: second.kubeconfig });
    }
    assert.equal(created.stdout, 'configmap/three created\n', created.stderr);
  });

  it('refuses a bad --store with a usage error', () => {
    const result = spawnSyncCli(['server', '--data-dir', join(dir, 'bad'), '--store', 'etcd://nohostport']);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /--store: .*etcd:\/\/host:port/);
  });
});

function spawnSyncCli(args: string[]): { status: number | null; stderr: string } {
  try {
    execFileSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
    return { status: 0, stderr: '' };
  } catch (err) {
    const failure = err as { status: number | null; stderr: string };
    return { status: failure.status, stderr: failure.stderr };
  }
}
