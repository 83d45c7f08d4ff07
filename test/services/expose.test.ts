/**
 * `vireo expose` (the real CLI process) against a real server, checked with
 * real kubectl: the Service selects the VM template's labels and picks up
 * the VMI that carries them; bad requests fail with virtctl's messages.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { HttpClient, resources } from '../../src/client/index.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';
import { eventually } from '../../src/testing/wait.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function vireo(server: TestServer, args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', KUBECONFIG: server.kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => { resolve({ code: code ?? -1, stdout, stderr }); });
  });
}

const vm = (name: string, labels: Record<string, string>) => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name, namespace: 'default' },
  spec: {
    runStrategy: 'Halted',
    template: { metadata: { labels }, spec: { domain: { devices: {}, resources: { requests: { memory: '64Mi' } } } } },
  },
});

describe('vireo expose', () => {
  let server: TestServer;
  let client: HttpClient;

  before(async () => {
    server = await startTestServer();
    client = new HttpClient({ server: server.url, token: server.componentToken, caCert: server.pki.caCert, userAgent: 'test' });
    await client.create(resources.virtualMachines, vm('web', { 'kubevirt.io/domain': 'web', app: 'web' }));
    await client.create(resources.virtualMachines, vm('bare', {}));
  });
  after(async () => {
    client.close();
    await server.stop();
  });

  test('expose vm makes a NodePort Service selecting the template labels, visible to kubectl', async () => {
    const r = await vireo(server, ['expose', 'vm', 'web', '--port', '80', '--target-port', '8080', '--type', 'NodePort', '--name', 'web-np', '--node-port', '30888']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Service web-np successfully exposed for vm web\n');
    const got = await kubectl(['get', 'svc', 'web-np', '-o', 'wide'], { kubeconfig: server.kubeconfig });
    assert.equal(got.code, 0, got.stderr);
    assert.match(got.stdout, /^web-np\s+NodePort\s+10\.\d+\.\d+\.\d+\s+<none>\s+80:30888\/TCP\s+\d+s\s+app=web,kubevirt\.io\/domain=web$/m);
    const svc = await client.get(resources.services, 'default', 'web-np');
    assert.deepEqual((svc.spec as { ports: unknown[] }).ports, [{ port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30888 }]);

    // A VMI with the template's labels (as the VM controller would make it) becomes the Service's endpoint.
    await client.create(resources.virtualMachineInstances, {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: 'web', namespace: 'default', labels: { 'kubevirt.io/domain': 'web', app: 'web' } },
      spec: { domain: { devices: {}, resources: { requests: { memory: '64Mi' } } } },
    });
    await client.patch(resources.virtualMachineInstances, 'default', 'web', 'merge', {
      status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }], interfaces: [{ name: 'default', ipAddress: '10.244.0.20' }] },
    });
    await eventually(async () => {
      const ep = await kubectl(['get', 'endpoints', 'web-np', '--no-headers'], { kubeconfig: server.kubeconfig });
      return /10\.244\.0\.20:8080/.test(ep.stdout);
    }, { what: 'kubectl get endpoints to show the VMI' });
  });

  test('expose vmi defaults the Service name to the VMI, ClusterIP and targetPort = port', async () => {
    const r = await vireo(server, ['expose', 'vmi', 'web', '--port', '22']);
    assert.equal(r.code, 0, r.stderr);
    const svc = await client.get(resources.services, 'default', 'web');
    const spec = svc.spec as { type: string; selector: Record<string, string>; ports: unknown[] };
    assert.deepEqual([spec.type, spec.selector, spec.ports], ['ClusterIP', { 'kubevirt.io/domain': 'web', app: 'web' }, [{ port: 22, targetPort: 22, protocol: 'TCP' }]]);
  });

  test('bad requests fail with a message that says what to do', async () => {
    const bare = await vireo(server, ['expose', 'vm', 'bare', '--port', '80', '--name', 'bare']);
    assert.notEqual(bare.code, 0);
    assert.match(bare.stderr, /cannot expose vm bare without any label: .*spec\.template\.metadata\.labels/);
    const missing = await vireo(server, ['expose', 'vm', 'nope', '--port', '80']);
    assert.match(missing.stderr, /vm nope not found in namespace default/);
    const noPort = await vireo(server, ['expose', 'vm', 'web', '--name', 'x']);
    assert.match(noPort.stderr, /required flag\(s\) "port" not set/);
    const badType = await vireo(server, ['expose', 'vm', 'web', '--port', '80', '--type', 'Magic']);
    assert.match(badType.stderr, /unknown service type: Magic/);
    const taken = await vireo(server, ['expose', 'vm', 'web', '--port', '80', '--type', 'NodePort', '--name', 'web-np2', '--node-port', '30888']);
    assert.notEqual(taken.code, 0);
    assert.match(taken.stderr, /spec\.ports\[0\]\.nodePort: Invalid value: 30888: provided port is already allocated/);
  });
});
