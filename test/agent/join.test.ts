/**
 * Joining a host with a token, end to end: a real `vireo server` process
 * and real `vireo agent` processes on loopback, the real kubectl. Join
 * tokens are kube-system Secrets (`vireo token create|list|delete`); a
 * wrong, malformed, deleted or expired token and a CA that is not the
 * pinned one are refused with messages that say so; a good one is
 * exchanged for the node's own credential (stored 0600, hashed on the
 * server) that later starts reuse; the credential acts only as its node
 * (403 on another Node or Lease); node-name clashes and an incompatible
 * version are refused; `kubectl get nodes`, `cordon` and `uncordon` behave
 * as on Kubernetes (a cordoned node gets no new VMI); deleting the
 * credential's Secret revokes it (401 saying to re-join), and the host
 * re-joins with a new token. No guest boots.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from '../../src/api/errors.js';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { HttpClient, resources } from '../../src/client/index.js';
import { kubectl, kubectlBinary } from '../../src/testing/kubectl.js';
import { freePort, startAgentProcess, startServerProcess } from '../../src/testing/process.js';
import type { AgentProcess, ServerProcess } from '../../src/testing/process.js';
import { eventually } from '../../src/testing/wait.js';
import { vireo } from '../subresources/support.js';
import { hasBinary } from '../../src/testing/binaries.js';

const skip = !hasBinary('qemu-system-x86_64') ? 'qemu-system-x86_64 is not installed (the agents check QEMU at start)' : kubectlBinary() === undefined ? 'kubectl is not installed' : false;

/** The refusal an agent that never got ready printed (startAgentProcess rejects with its output). */
async function refusal(start: Promise<AgentProcess>): Promise<string> {
  try {
    const agent = await start;
    await agent.stop();
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  assert.fail('the agent started, but it should have been refused');
}

/** The status code of a GET to an agent endpoint (self-signed: not verified here) with a bearer token. */
function fetchStatus(url: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { rejectUnauthorized: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** What `vireo token create` printed: the token and the CA hash of its join line. */
function parseCreated(stdout: string): { token: string; id: string; hash: string } {
  const token = stdout.split('\n')[0] ?? '';
  assert.match(token, /^[a-z0-9]{6}\.[a-z0-9]{16}$/, stdout);
  const hash = /--ca-cert-hash (sha256:[0-9a-f]{64})/.exec(stdout)?.[1];
  assert.ok(hash !== undefined, stdout);
  return { token, id: token.slice(0, 6), hash };
}

test('hosts join with tokens and act only as their own node', { skip, timeout: 600_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'vj-'));
  const started: { server?: ServerProcess; agents: AgentProcess[]; client?: HttpClient } = { agents: [] };
  t.after(async () => {
    await started.client?.delete(resources.virtualMachineInstances, 'default', 'cordoned').catch(() => undefined);
    await eventually(async () => (await started.client?.tryGet(resources.virtualMachineInstances, 'default', 'cordoned')) === undefined, { timeoutMs: 300_000, intervalMs: 500, what: 'node-b\'s agent to let the VMI go' }).catch(() => undefined);
    for (const agent of started.agents) await agent.stop();
    started.server?.child.kill('SIGTERM');
    await started.server?.exited;
    started.client?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const server = await startServerProcess({ dataDir: join(root, 's'), port: await freePort(), timeoutMs: 90_000 });
  started.server = server;
  const client = new HttpClient({ server: server.url, token: server.token, caCert: server.caCert });
  started.client = client;
  const kc = { kubeconfig: server.kubeconfig };
  const agentDir = join(root, 'b');
  const agentPort = await freePort();
  const startNodeB = (join: { server?: string; token?: string; caCertHash?: string }): Promise<AgentProcess> =>
    startAgentProcess({ join, dataDir: agentDir, nodeName: 'node-b', port: agentPort, timeoutMs: 90_000 });
  const created = async (args: string[] = []): Promise<{ token: string; id: string; hash: string }> => {
    const out = await vireo(['token', 'create', ...args], kc);
    assert.equal(out.code, 0, out.stderr);
    return parseCreated(out.stdout);
  };

  await t.test('vireo token create stores a bootstrap token Secret that kubectl and vireo token list show', async () => {
    const { token, id, hash } = await created(['--ttl', '2h', '--description', 'for node-b']);
    const expected = execFileSync('sh', ['-c', `openssl x509 -pubkey -noout -in ${join(root, 's', 'ca.crt')} | openssl pkey -pubin -outform der | sha256sum`], { encoding: 'utf8' }).split(' ')[0];
    assert.equal(hash, `sha256:${expected ?? ''}`, 'the CA hash is kubeadm\'s: SHA-256 of the CA\'s DER SubjectPublicKeyInfo');
    const secrets = await kubectl(['-n', 'kube-system', 'get', 'secrets'], kc);
    assert.match(secrets.stdout, new RegExp(`bootstrap-token-${id}\\s+bootstrap\\.kubernetes\\.io/token\\s+5\\s`), secrets.stdout);
    const secret = await client.get(resources.secrets, 'kube-system', `bootstrap-token-${id}`);
    const data = (secret as { data?: Record<string, string> }).data ?? {};
    const field = (k: string): string => Buffer.from(data[k] ?? '', 'base64').toString('utf8');
    assert.equal(`${field('token-id')}.${field('token-secret')}`, token);
    assert.equal(field('usage-bootstrap-authentication'), 'true');
    const expires = Date.parse(field('expiration')) - Date.now();
    assert.ok(expires > 3_500_000 && expires <= 7_200_000, `expires in ${expires} ms`);
    const list = await vireo(['token', 'list'], kc);
    assert.match(list.stdout, new RegExp(`${token.replace('.', '\\.')}\\s+2h\\s+\\S+Z\\s+authentication\\s+for node-b`), list.stdout);
  });

  await t.test('wrong, malformed, deleted and expired tokens and an unpinned CA are refused, saying why', async () => {
    assert.match(await refusal(startNodeB({ server: server.url, token: 'abcdef.0123456789abcdef' })), /join token abcdef\.… is not valid: no such token .*vireo token create/);
    assert.match(await refusal(startNodeB({ server: server.url, token: 'not-a-token' })), /--token is not a join token/);
    const good = await created();
    // The right id with another secret: the server's CA signature (keyed with the real token) does not match.
    assert.match(await refusal(startNodeB({ server: server.url, token: `${good.id}.${'x'.repeat(16)}` })), new RegExp(`does not know join token ${good.id}\\.… \\(its CA signature does not match\\)`));
    assert.match(await refusal(startNodeB({ server: server.url, token: good.token, caCertHash: `sha256:${'0'.repeat(64)}` })), /refusing to join a server that is not the pinned one/);
    assert.equal(existsSync(join(agentDir, 'node-credential.json')), false, 'no refused join leaves a credential');

    const deleted = await created();
    const del = await vireo(['token', 'delete', deleted.id], kc);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(await client.tryGet(resources.secrets, 'kube-system', `bootstrap-token-${deleted.id}`), undefined);
    assert.match(await refusal(startNodeB({ server: server.url, token: deleted.token })), /no such token \(it was deleted/);

    const expiring = await created(['--ttl', '1s']);
    await eventually(async () => (await vireo(['token', 'list'], kc)).stdout.includes(`${expiring.token}   <expired>`), { timeoutMs: 10_000, what: 'the 1s token to expire' });
    assert.match(await refusal(startNodeB({ server: server.url, token: expiring.token })), new RegExp(`join token ${expiring.id}\\.… expired at .*vireo token create`));
    await eventually(async () => (await client.tryGet(resources.secrets, 'kube-system', `bootstrap-token-${expiring.id}`)) === undefined, { what: 'the expired token to be cleaned up' });
  });

  let credential = '';
  let joinToken = '';
  let hash = '';
  await t.test('a good token (CA pinned) is exchanged for a node credential, stored 0600 here and hashed on the server', async () => {
    ({ token: joinToken, hash } = await created());
    started.agents.push(await startNodeB({ server: server.url, token: joinToken, caCertHash: hash }));
    const file = join(agentDir, 'node-credential.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { credential: string; nodeName: string; server: string };
    credential = stored.credential;
    assert.equal(stored.nodeName, 'node-b');
    assert.match(credential, /^vireo-node\.node-b\.[0-9a-f]{64}$/);
    const secret = await client.get(resources.secrets, 'kube-system', 'vireo-node-node-b');
    assert.equal((secret as { type?: string }).type, 'vireo.io/node-credential');
    assert.ok(!JSON.stringify(secret).includes(credential.slice(-64)), 'the server keeps only a hash of the credential');
    const node = await client.get(resources.nodes, undefined, 'node-b');
    assert.equal(node.metadata.annotations?.['vireo.io/joined'], 'true');
    await eventually(async () => (await client.tryGet(resources.leases, 'kube-node-lease', 'node-b')) !== undefined, { what: 'node-b\'s Lease' });
  });

  await t.test('the node credential acts only as node-b; the join token only joins', async () => {
    const asNode = new HttpClient({ server: server.url, token: credential, caCert: server.caCert });
    const serverNode = (await client.list(resources.nodes)).items.map((n) => n.metadata.name ?? '').find((n) => n !== 'node-b') ?? '';
    const forbidden = async (what: Promise<unknown>, pattern: RegExp): Promise<void> => {
      await assert.rejects(what, (err: unknown) => err instanceof ApiError && err.httpCode === 403 && pattern.test(err.message));
    };
    try {
      await forbidden(asNode.patch(resources.nodes, undefined, serverNode, 'merge', { metadata: { labels: { taken: 'yes' } } }), new RegExp(`node node-b may not patch nodes ${serverNode}: a node credential acts only on its own Node`));
      await forbidden(asNode.patch(resources.nodes, undefined, serverNode, 'merge', { status: { conditions: [] } }, { subresource: 'status' }), /may not patch the status of nodes/);
      await forbidden(asNode.patch(resources.leases, 'kube-node-lease', serverNode, 'merge', { spec: { holderIdentity: 'node-b' } }), /renews only its own Lease/);
      await forbidden(asNode.create(resources.nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-c' } }), /may not create nodes node-c/);
      await forbidden(asNode.get(resources.secrets, 'kube-system', 'vireo-node-node-b'), /not the join tokens and node credentials/);
      await forbidden(asNode.list(resources.secrets, { namespace: 'kube-system' }), /may not read secrets/);
      const exported = await asNode.raw('GET', `/vireo/v1/nodes/${serverNode}/namespaces/default/persistentvolumeclaims/data/export?target=x`);
      assert.equal(exported.status, 403, exported.body);
      assert.match(exported.body, /node node-b may not read the volume export for target x: no claim has that uid; a node credential reads only the exports copied into claims of its own node/);
      const own = await asNode.patch(resources.nodes, undefined, 'node-b', 'merge', { metadata: { labels: { 'example.com/own': 'yes' } } });
      assert.equal(own.metadata.labels?.['example.com/own'], 'yes');
      assert.equal(await client.tryGet(resources.nodes, undefined, 'node-c'), undefined);
    } finally {
      asNode.close();
    }
    const asJoin = new HttpClient({ server: server.url, token: joinToken, caCert: server.caCert });
    try {
      await forbidden(asJoin.list(resources.nodes), /a join token only joins a node/);
    } finally {
      asJoin.close();
    }
  });

  await t.test('an agent of another major.minor is refused, naming both versions', async () => {
    const { token } = await created();
    const asJoin = new HttpClient({ server: server.url, token, caCert: server.caCert });
    try {
      const answer = await asJoin.raw('POST', '/vireo/v1/join', { nodeName: 'node-old', version: '9.4.1' });
      assert.equal(answer.status, 400, answer.body);
      assert.match(answer.body, /the agent's version 9\.4\.1 is not compatible with the server's version 0\.1\.\d+/);
      const bad = await asJoin.raw('POST', '/vireo/v1/join', { nodeName: 'node-old' });
      assert.equal(bad.status, 400, bad.body);
      assert.match(bad.body, /needs a non-empty string \\"version\\"/);
    } finally {
      asJoin.close();
    }
  });

  await t.test('node names another credential holds are refused', async () => {
    const { token } = await created();
    const other = (nodeName: string): Promise<AgentProcess> => startAgentProcess({ join: { server: server.url, token }, dataDir: join(root, `other-${nodeName}`), nodeName, port: 0, timeoutMs: 90_000 });
    assert.match(await refusal(other('node-b')), /cannot join as node node-b: node node-b has joined already and its credential is still valid .*kubectl -n kube-system delete secret vireo-node-node-b/);
    const serverNode = (await client.list(resources.nodes)).items.map((n) => n.metadata.name ?? '').find((n) => n !== 'node-b') ?? '';
    assert.match(await refusal(other(serverNode)), new RegExp(`a Node named ${serverNode} is already registered, not by a joined agent`));
  });

  await t.test('kubectl get nodes shows status, roles, age and version; cordon keeps new VMIs off the node', async () => {
    const plain = await kubectl(['get', 'nodes'], kc);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\n/);
    assert.match(plain.stdout, /\nnode-b\s+Ready\s+<none>\s+\d+[sm]\s+v1\.32\.0\+vireo\n?/);
    assert.match(plain.stdout, /\n\S+\s+Ready\s+control-plane\s+\d+[sm]\s+v1\.32\.0\+vireo/);
    const wide = await kubectl(['get', 'nodes', '-o', 'wide'], kc);
    assert.match(wide.stdout, /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\s+INTERNAL-IP\s+EXTERNAL-IP\s+OS-IMAGE\s+KERNEL-VERSION\s+CONTAINER-RUNTIME\n/);
    assert.match(wide.stdout, /\nnode-b\s+Ready\s+<none>\s+\S+\s+\S+\s+127\.0\.0\.1\s+<none>\s+.+\s+\S+\s+qemu:\/\/\S+/);

    const cordon = await kubectl(['cordon', 'node-b'], kc);
    assert.equal(cordon.code, 0, cordon.stderr);
    assert.match(cordon.stdout, /node\/node-b cordoned/);
    assert.equal((await client.get(resources.nodes, undefined, 'node-b') as { spec?: { unschedulable?: boolean } }).spec?.unschedulable, true);
    assert.match((await kubectl(['get', 'node', 'node-b'], kc)).stdout, /\nnode-b\s+Ready,SchedulingDisabled\s/);
    // Its containerDisk is in a registry nobody serves (loopback port 1): if it ever reached node-b, no guest would boot.
    await client.create(resources.virtualMachineInstances, {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: 'cordoned', namespace: 'default' },
      spec: {
        nodeSelector: { 'kubernetes.io/hostname': 'node-b' },
        terminationGracePeriodSeconds: 0,
        domain: { memory: { guest: '64Mi' }, devices: { disks: [{ name: 'disk', disk: { bus: 'virtio' } }] } },
        volumes: [{ name: 'disk', containerDisk: { image: '127.0.0.1:1/none:latest' } }],
      },
    });
    const unschedulable = await eventually(async () => {
      const vmi = await client.get(resources.virtualMachineInstances, 'default', 'cordoned');
      return recordsAt(vmi, 'status', 'conditions').find((c) => c['type'] === 'PodScheduled' && c['reason'] === 'Unschedulable');
    }, { timeoutMs: 30_000, what: 'the VMI to be unschedulable' });
    assert.match(String(unschedulable['message']), /node\(s\) were unschedulable/);
    assert.equal(stringAt(await client.get(resources.virtualMachineInstances, 'default', 'cordoned'), 'status', 'nodeName'), undefined);

    const uncordon = await kubectl(['uncordon', 'node-b'], kc);
    assert.match(uncordon.stdout, /node\/node-b uncordoned/);
    assert.match((await kubectl(['get', 'node', 'node-b'], kc)).stdout, /\nnode-b\s+Ready\s/);
    await eventually(async () => stringAt(await client.get(resources.virtualMachineInstances, 'default', 'cordoned'), 'status', 'nodeName') === 'node-b', { timeoutMs: 30_000, what: 'the VMI to go to node-b once uncordoned' });
    // The server reaches node-b's endpoint with its own token, which the joined agent knows only by its digest.
    const log = await client.raw('GET', '/apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachineinstances/cordoned/consolelog');
    assert.ok(log.status < 500 && !log.body.includes('refused this server\'s credentials'), `${log.status} ${log.body}`);
    const stranger = await fetchStatus(`https://127.0.0.1:${agentPort}/v1/namespaces/default/virtualmachineinstances/cordoned/consolelog`, credential);
    assert.equal(stranger, 401, 'node-b\'s endpoint refuses anything but the server\'s token (here: its own credential)');
    // node-b's agent lets it go once it has probed its accelerator (which may first build the test guest): see t.after.
    await client.delete(resources.virtualMachineInstances, 'default', 'cordoned');
  });

  await t.test('a restarted agent uses its stored credential, not the (now deleted) join token', async () => {
    await started.agents.pop()?.stop();
    assert.equal((await vireo(['token', 'delete', joinToken], kc)).code, 0);
    started.agents.push(await startNodeB({}));
    const stored = JSON.parse(readFileSync(join(agentDir, 'node-credential.json'), 'utf8')) as { credential: string };
    assert.equal(stored.credential, credential, 'the credential is the one of the first join');
  });

  await t.test('deleting the credential Secret revokes it; the host re-joins with a new token', async () => {
    const del = await kubectl(['-n', 'kube-system', 'delete', 'secret', 'vireo-node-node-b'], kc);
    assert.equal(del.code, 0, del.stderr);
    const asNode = new HttpClient({ server: server.url, token: credential, caCert: server.caCert });
    try {
      await assert.rejects(asNode.get(resources.nodes, undefined, 'node-b'), (err: unknown) =>
        err instanceof ApiError && err.httpCode === 401 && /the credential of node node-b was revoked .*re-join the host with a new join token/.test(err.message));
    } finally {
      asNode.close();
    }
    await started.agents.pop()?.stop();
    assert.match(await refusal(startNodeB({})), /refuses this node's stored credential: the credential of node node-b was revoked/);
    const fresh = await created();
    started.agents.push(await startNodeB({ server: server.url, token: fresh.token, caCertHash: fresh.hash }));
    const renewed = JSON.parse(readFileSync(join(agentDir, 'node-credential.json'), 'utf8')) as { credential: string };
    assert.notEqual(renewed.credential, credential, 'a new credential');
    assert.ok(await client.tryGet(resources.secrets, 'kube-system', 'vireo-node-node-b'));
  });
});
