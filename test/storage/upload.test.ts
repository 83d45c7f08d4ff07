/**
 * CDI uploads end to end on one node, against the real server, controllers
 * and node agent: `vireo image-upload dv` (the real CLI process) uploads the
 * test guest's qcow2 and a VM boots from it; a gzip image through the
 * synchronous proxy endpoint and a multipart form; UploadTokenRequest
 * through kubectl; bad tokens; an upload cut half-way that leaves the
 * volume unfinished and a second upload that completes it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { KObject } from '../../src/api/object.js';
import { recordAt, stringAt } from '../../src/api/kinds/read.js';
import { TEST_GUEST_READY_MARKER, ensureTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import { cdiAnnotations } from '../../src/storage/import/index.js';
import { kubectl, kubectlBinary } from '../../src/testing/kubectl.js';
import { eventually } from '../../src/testing/wait.js';
import { ConsoleCapture, History, skipWithoutQemu, startVmEnv, vmManifest, vms } from '../e2e/vm-support.js';
import type { VmEnv } from '../e2e/vm-support.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function vireo(env: VmEnv, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', KUBECONFIG: env.server.kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.once('close', (code) => { resolve({ code: code ?? -1, stdout, stderr }); });
  });
}

function uploadDv(name: string): KObject {
  return { apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', metadata: { name, namespace: 'default' }, spec: { source: { upload: {} }, storage: { resources: { requests: { storage: '64Mi' } } } } };
}

async function dvPhase(env: VmEnv, name: string, phase: string, timeoutMs = 60_000): Promise<KObject> {
  return eventually(async () => {
    const dv = await env.client.tryGet(resources.dataVolumes, 'default', name);
    return stringAt(dv, 'status', 'phase') === phase ? dv : undefined;
  }, { what: `DataVolume ${name} to be ${phase}`, timeoutMs, intervalMs: 100 });
}

async function tokenFor(env: VmEnv, pvc: string): Promise<string> {
  const made = await env.client.create({ group: 'upload.cdi.kubevirt.io', version: 'v1beta1', plural: 'uploadtokenrequests', namespaced: true }, { apiVersion: 'upload.cdi.kubevirt.io/v1beta1', kind: 'UploadTokenRequest', metadata: { name: 't', namespace: 'default' }, spec: { pvcName: pvc } });
  return stringAt(made, 'status', 'token') ?? '';
}

/** The test guest's VM, its root disk the DataVolume `dv`. */
function bootVm(name: string, dv: string): KObject {
  const vm = vmManifest(name, { runStrategy: 'Always', image: 'unused', graceSeconds: 0, memory: '128Mi' });
  const template = recordAt(vm, 'spec', 'template', 'spec');
  if (template !== undefined) template.volumes = [{ name: 'root', dataVolume: { name: dv } }];
  return vm;
}

/** Sends `half` of `data` announcing all of it, then drops the connection. */
function cutUpload(env: VmEnv, token: string, data: Buffer, half: number): Promise<void> {
  return new Promise((resolve) => {
    const req = request(new URL('/v1beta1/upload', env.server.url), { method: 'POST', ca: env.server.pki.caCert, headers: { authorization: `Bearer ${token}`, 'content-length': String(data.length) } });
    req.on('error', () => { resolve(); });
    req.on('response', (res) => { res.resume(); resolve(); });
    req.write(data.subarray(0, half), () => { setTimeout(() => { req.destroy(); resolve(); }, 200); });
  });
}

test('CDI uploads: image-upload, proxy endpoints, tokens, interruption, and a VM booting from an upload', { skip: skipWithoutQemu, timeout: 240_000 }, async (t) => {
  const env = await startVmEnv(t);
  const guest = await ensureTestGuest();
  const image = readFileSync(guest.disk);

  await t.test('vireo image-upload dv uploads the qcow2 with progress; the DataVolume is Succeeded and a VM boots from it', async (t) => {
    const history = await History.start(t, env.client, resources.dataVolumes, 'up-root');
    const result = await vireo(env, ['image-upload', 'dv', 'up-root', '--image-path', guest.disk, '--size', '64Mi']);
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /^DataVolume default\/up-root created$/m);
    assert.match(result.stdout, /^Uploading data to https:\/\/127\.0\.0\.1:\d+$/m);
    assert.match(result.stdout, /^\d+\.\d MiB sent in \d+\.\d s \(.*\/s\)$/m, 'a plain progress line when stdout is not a terminal');
    assert.match(result.stdout, /^Processing completed successfully$/m);
    assert.match(result.stdout, new RegExp(`^Uploading ${guest.disk} completed successfully$`, 'm'));
    const dv = await dvPhase(env, 'up-root', 'Succeeded');
    assert.equal(stringAt(dv, 'status', 'progress'), '100.0%');
    const phases = history.transitions((obj) => stringAt(obj, 'status', 'phase'));
    assert.ok(phases.includes('UploadReady'), `the DataVolume was UploadReady: ${phases.join(' → ')}`);

    const again = await vireo(env, ['image-upload', 'dv', 'up-root', '--image-path', guest.disk, '--size', '64Mi']);
    assert.equal(again.code, 5, again.stderr);
    assert.match(again.stderr, /DataVolume default\/up-root already exists: upload into it with --no-create/);
    const missing = await vireo(env, ['image-upload', 'dv', 'nope', '--image-path', '/nonexistent.qcow2', '--size', '64Mi']);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /failed to open image file \/nonexistent.qcow2/);

    await env.client.create(vms, bootVm('uploaded', 'up-root'));
    const console = await eventually(async () => {
      const vmi = await env.client.tryGet(resources.virtualMachineInstances, 'default', 'uploaded');
      return stringAt(vmi, 'status', 'phase') === 'Running' ? ConsoleCapture.open(env, 'uploaded') : undefined;
    }, { what: 'the VM to run', timeoutMs: 60_000, intervalMs: 200 });
    t.after(() => { console.close(); });
    await eventually(() => console.text().includes(TEST_GUEST_READY_MARKER), { what: 'the guest to boot from the uploaded volume', timeoutMs: 120_000, intervalMs: 200 });
    await env.client.delete(vms, 'default', 'uploaded');
  });

  await t.test('a gzip image through the synchronous endpoint; a finished upload is refused', async () => {
    await env.client.create(resources.dataVolumes, uploadDv('up-gz'));
    await dvPhase(env, 'up-gz', 'UploadReady');
    const token = await tokenFor(env, 'up-gz');
    const sync = await env.server.fetch('POST', '/v1beta1/upload', { body: gzipSync(image), token, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(sync.status, 200, sync.body);
    // Synchronous: the volume is processed by the time the answer comes.
    const pvc = await env.client.get(resources.persistentVolumeClaims, 'default', 'up-gz');
    assert.equal(pvc.metadata.annotations?.[cdiAnnotations.podPhase], 'Succeeded');
    await dvPhase(env, 'up-gz', 'Succeeded');
    const late = await env.server.fetch('POST', '/v1beta1/upload', { body: image, token });
    assert.equal(late.status, 409, late.body);
    assert.match(late.body, /rejecting Upload Request for PVC up-gz that already finished uploading/);
  });

  await t.test('a multipart form upload', async () => {
    await env.client.create(resources.dataVolumes, uploadDv('up-form'));
    await dvPhase(env, 'up-form', 'UploadReady');
    const token = await tokenFor(env, 'up-form');
    const boundary = 'vireo-test-boundary';
    const body = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="disk.qcow2"\r\n\r\n`), image, Buffer.from(`\r\n--${boundary}--\r\n`)]);
    const answer = await env.server.fetch('POST', '/v1beta1/upload-form', { body, token, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } });
    assert.equal(answer.status, 200, answer.body);
    await dvPhase(env, 'up-form', 'Succeeded');
  });

  await t.test('the proxy refuses a missing, bad or forged token; the cluster token is not an upload token', async () => {
    const none = await env.server.fetch('POST', '/v1beta1/upload-async', { body: 'x', token: null });
    assert.equal(none.status, 400, none.body);
    for (const token of ['garbage', env.server.token, `${Buffer.from('{"op":"upload","ns":"default","pvc":"up-root","exp":99999999999999}').toString('base64url')}.AAAA`]) {
      const answer = await env.server.fetch('POST', '/v1beta1/upload-async', { body: 'x', token });
      assert.equal(answer.status, 401, `${token}: ${answer.body}`);
      assert.match(answer.body, /the upload token is not valid/);
    }
    const head = await env.server.fetch('HEAD', '/v1beta1/upload-async', { token: await tokenFor(env, 'up-root') });
    assert.equal(head.status, 200, 'virtctl finds the async endpoint with HEAD');
  });

  await t.test('an upload cut half-way leaves the volume unfinished and ready; a second upload completes it', async () => {
    await env.client.create(resources.dataVolumes, uploadDv('up-cut'));
    await dvPhase(env, 'up-cut', 'UploadReady');
    await cutUpload(env, await tokenFor(env, 'up-cut'), image, Math.floor(image.length / 2));
    const pvc = await eventually(async () => {
      const current = await env.client.get(resources.persistentVolumeClaims, 'default', 'up-cut');
      return current.metadata.annotations?.[cdiAnnotations.runningReason] === 'Error' ? current : undefined;
    }, { what: 'the interruption reported on the PVC', timeoutMs: 30_000, intervalMs: 100 });
    assert.match(pvc.metadata.annotations?.[cdiAnnotations.runningMessage] ?? '', /the upload was interrupted after \d+ of \d+ bytes/);
    assert.notEqual(pvc.metadata.annotations?.[cdiAnnotations.podPhase], 'Succeeded');
    const dv = await dvPhase(env, 'up-cut', 'UploadReady');
    assert.match(JSON.stringify(dv.status), /interrupted/, 'the Running condition says why');
    const retry = await vireo(env, ['image-upload', 'dv', 'up-cut', '--no-create', '--image-path', guest.disk]);
    assert.equal(retry.code, 0, `${retry.stdout}\n${retry.stderr}`);
    assert.match(retry.stdout, /^Using existing DataVolume default\/up-cut$/m);
    await dvPhase(env, 'up-cut', 'Succeeded');
  });

  await t.test('UploadTokenRequest through kubectl: create-only, a token for a known claim, a 422 for an unknown one', { skip: kubectlBinary() === undefined ? 'kubectl is not installed' : false }, async () => {
    const manifest = 'apiVersion: upload.cdi.kubevirt.io/v1beta1\nkind: UploadTokenRequest\nmetadata:\n  name: tok\n  namespace: default\nspec:\n  pvcName: up-root\n';
    const created = await kubectl(['create', '-f', '-', '-o', 'jsonpath={.status.token}'], { kubeconfig: env.server.kubeconfig, stdin: manifest });
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const plain = await kubectl(['create', '-f', '-'], { kubeconfig: env.server.kubeconfig, stdin: manifest });
    assert.equal(plain.stdout, 'uploadtokenrequest.upload.cdi.kubevirt.io/tok created\n', plain.stderr);
    const unknown = await kubectl(['create', '-f', '-'], { kubeconfig: env.server.kubeconfig, stdin: manifest.replace('up-root', 'no-such-claim') });
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /spec\.pvcName: Not found: "no-such-claim"/);
    const listed = await kubectl(['api-resources', '--api-group=upload.cdi.kubevirt.io', '-o', 'wide', '--no-headers'], { kubeconfig: env.server.kubeconfig });
    assert.match(listed.stdout, /^uploadtokenrequests\s+utr,utrs\s+upload\.cdi\.kubevirt\.io\/v1beta1\s+true\s+UploadTokenRequest\s+create\s*$/m, listed.stdout);
    const config = await env.client.get({ group: 'cdi.kubevirt.io', version: 'v1beta1', plural: 'cdiconfigs', namespaced: false }, undefined, 'config');
    assert.equal(stringAt(config, 'status', 'uploadProxyURL'), env.server.url, 'CDIConfig publishes the upload proxy');
  });

  await t.test('CDIConfig uploadProxyURLOverride is published as soon as it is set, and cleared the same way', { skip: kubectlBinary() === undefined ? 'kubectl is not installed' : false }, async () => {
    const cdiConfigs = { group: 'cdi.kubevirt.io', version: 'v1beta1', plural: 'cdiconfigs', namespaced: false };
    const proxyUrl = async (): Promise<string | undefined> => stringAt(await env.client.get(cdiConfigs, undefined, 'config'), 'status', 'uploadProxyURL');
    const set = await kubectl(['patch', 'cdiconfig', 'config', '--type=merge', '-p', '{"spec":{"uploadProxyURLOverride":"https://uploads.example.test:31001"}}'], { kubeconfig: env.server.kubeconfig });
    assert.equal(set.code, 0, set.stderr);
    await eventually(async () => (await proxyUrl()) === 'https://uploads.example.test:31001', { what: 'the override in status.uploadProxyURL' });
    const cleared = await kubectl(['patch', 'cdiconfig', 'config', '--type=merge', '-p', '{"spec":{"uploadProxyURLOverride":null}}'], { kubeconfig: env.server.kubeconfig });
    assert.equal(cleared.code, 0, cleared.stderr);
    await eventually(async () => (await proxyUrl()) === env.server.url, { what: 'the proxy URL back in status.uploadProxyURL' });
  });
});
