/**
 * The DataVolume controller against the real API server: the PVC it makes
 * (spec, CDI's annotations, owner), the phases, conditions, progress and
 * Events a DataVolume goes through as the node's import runner annotates
 * the PVC (played here by the test, as the VM tests play the agent),
 * WaitForFirstConsumer, sources Vireo cannot fill yet, DataSources, CDI's
 * own examples, and VMs with dataVolumeTemplates.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { KObject } from '../../src/api/object.js';
import { recordAt, stringAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { DataVolumeController } from '../../src/controllers/datavolume/index.js';
import { VirtualMachineController } from '../../src/controllers/vm/index.js';
import { cdiAnnotations } from '../../src/storage/import/index.js';
import { sharedExamples } from '../e2e/support.js';
import type { Env } from './support.js';
import { condition, eventsFor, eventually, printable, read, startEnv, vmManifest } from './support.js';

let env: Env;
let dvController: DataVolumeController;
let vmController: VirtualMachineController;
let defaultClass: string;

before(async () => {
  env = await startEnv();
  // The server may install its own default class (`local`); only without one does the test make it.
  const classes = await env.client.list(resources.storageClasses);
  const existing = classes.items.find((c) => c.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true');
  defaultClass = existing?.metadata.name ?? 'local-test';
  if (existing === undefined) {
    await env.client.create(resources.storageClasses, {
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: defaultClass, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
      provisioner: 'vireo.io/local',
      volumeBindingMode: 'WaitForFirstConsumer',
    });
  } else {
    assert.equal(stringAt(existing, 'volumeBindingMode'), 'WaitForFirstConsumer', 'the tests expect a WaitForFirstConsumer default class');
  }
  await env.client.create(resources.storageClasses, { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'immediate' }, provisioner: 'vireo.io/local', volumeBindingMode: 'Immediate' });
  dvController = new DataVolumeController(env.client, silentLogger);
  vmController = new VirtualMachineController(env.client, silentLogger);
  await Promise.all([dvController.start(), vmController.start()]);
});
after(async () => {
  await Promise.all([dvController.stop(), vmController.stop()]);
  await env.close();
});

function dataVolume(name: string, spec: Record<string, unknown>): KObject {
  return { apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', metadata: { name, namespace: 'default', labels: { team: 'a' } }, spec };
}

const storage = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ resources: { requests: { storage: '1Gi' } }, ...extra });

async function dvWhere(name: string, probe: (dv: KObject) => boolean, what: string): Promise<KObject> {
  return eventually(async () => {
    const dv = await read(env.client, resources.dataVolumes, name);
    return dv !== undefined && probe(dv) ? dv : undefined;
  }, { what: `DataVolume ${name}: ${what}` });
}

const phaseIs = (phase: string) => (dv: KObject): boolean => stringAt(dv, 'status', 'phase') === phase;

/** Plays the node side: the claim's phase, and the runner's annotations. */
async function playNode(name: string, status: Record<string, unknown> | undefined, annotations: Record<string, string>): Promise<void> {
  if (Object.keys(annotations).length > 0) await env.client.patch(resources.persistentVolumeClaims, 'default', name, 'merge', { metadata: { annotations } });
  if (status !== undefined) await env.client.patch(resources.persistentVolumeClaims, 'default', name, 'merge', { status }, { subresource: 'status' });
}

test('an http DataVolume makes its PVC with CDI\'s annotations, owned by it, with spec.storage defaults', async () => {
  const dv = await env.client.create(resources.dataVolumes, dataVolume('http-dv', {
    source: { http: { url: 'https://example.com/disk.qcow2', secretRef: 'creds', certConfigMap: 'ca', extraHeaders: ['X-A: 1', 'X-B: 2'], checksum: 'sha256:' + 'a'.repeat(64) } },
    storage: storage(),
  }));
  const pvc = await eventually(() => read(env.client, resources.persistentVolumeClaims, 'http-dv'), { what: 'the PVC' });
  assert.deepEqual(pvc.metadata.ownerReferences, [{ apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', name: 'http-dv', uid: dv.metadata.uid, controller: true, blockOwnerDeletion: true }]);
  assert.deepEqual(pvc.metadata.labels, { app: 'containerized-data-importer', team: 'a' });
  const a = pvc.metadata.annotations ?? {};
  assert.equal(a['cdi.kubevirt.io/storage.import.source'], 'http');
  assert.equal(a['cdi.kubevirt.io/storage.import.endpoint'], 'https://example.com/disk.qcow2');
  assert.equal(a['cdi.kubevirt.io/storage.import.secretName'], 'creds');
  assert.equal(a['cdi.kubevirt.io/storage.import.certConfigMap'], 'ca');
  assert.equal(a['cdi.kubevirt.io/storage.import.extraHeaders.0'], 'X-A: 1');
  assert.equal(a['cdi.kubevirt.io/storage.import.extraHeaders.1'], 'X-B: 2');
  assert.equal(a[cdiAnnotations.checksum], 'sha256:' + 'a'.repeat(64));
  assert.equal(a['cdi.kubevirt.io/storage.pod.phase'], 'Pending');
  assert.equal(a['cdi.kubevirt.io/storage.pod.restarts'], '0');
  assert.equal(a['cdi.kubevirt.io/storage.contentType'], 'kubevirt');
  assert.deepEqual(pvc.spec, { accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem', storageClassName: defaultClass, resources: { requests: { storage: '1Gi' } } });
  // A WaitForFirstConsumer class, not bound yet.
  const waiting = await dvWhere('http-dv', phaseIs('WaitForFirstConsumer'), 'WaitForFirstConsumer');
  assert.equal(stringAt(waiting, 'status', 'progress'), 'N/A');
  assert.equal(stringAt(waiting, 'status', 'claimName'), 'http-dv');
  assert.deepEqual(pick(condition(waiting, 'Bound')), { status: 'False', reason: 'Pending', message: 'PVC http-dv Pending' });
  assert.deepEqual(pick(condition(waiting, 'Ready')), { status: 'False', reason: '', message: '' });
});

test('the runner\'s annotations move the DataVolume through CDI\'s phases, conditions, progress and Events', async () => {
  await env.client.create(resources.dataVolumes, dataVolume('flow-dv', { source: { http: { url: 'http://127.0.0.1:1/disk.img' } }, storage: storage({ storageClassName: 'immediate' }) }));
  await dvWhere('flow-dv', phaseIs('Pending'), 'Pending on an Immediate class');
  await playNode('flow-dv', { phase: 'Bound' }, {});
  const scheduled = await dvWhere('flow-dv', phaseIs('ImportScheduled'), 'ImportScheduled once bound');
  assert.deepEqual(pick(condition(scheduled, 'Bound')), { status: 'True', reason: 'Bound', message: 'PVC flow-dv Bound' });
  await playNode('flow-dv', undefined, { [cdiAnnotations.podPhase]: 'Running', [cdiAnnotations.runningCondition]: 'true', [cdiAnnotations.runningReason]: 'Pod is running', [cdiAnnotations.runningMessage]: '', [cdiAnnotations.progress]: '45.2' });
  const running = await dvWhere('flow-dv', (dv) => stringAt(dv, 'status', 'progress') === '45.20%', 'progress 45.20%');
  assert.equal(stringAt(running, 'status', 'phase'), 'ImportInProgress');
  assert.deepEqual(pick(condition(running, 'Running')), { status: 'True', reason: 'Pod is running', message: '' });
  assert.deepEqual(pick(condition(running, 'Ready')), { status: 'False', reason: 'TransferRunning', message: '' });
  await playNode('flow-dv', undefined, { [cdiAnnotations.progress]: '87.5' });
  await dvWhere('flow-dv', (dv) => stringAt(dv, 'status', 'progress') === '87.50%', 'progress 87.50%');
  await playNode('flow-dv', undefined, { [cdiAnnotations.podPhase]: 'Succeeded', [cdiAnnotations.runningCondition]: 'false', [cdiAnnotations.runningReason]: 'Completed', [cdiAnnotations.runningMessage]: 'Import Complete', [cdiAnnotations.progress]: '100.0' });
  const done = await dvWhere('flow-dv', phaseIs('Succeeded'), 'Succeeded');
  assert.equal(stringAt(done, 'status', 'progress'), '100.0%');
  assert.deepEqual(pick(condition(done, 'Ready')), { status: 'True', reason: '', message: '' });
  assert.deepEqual(pick(condition(done, 'Running')), { status: 'False', reason: 'Completed', message: 'Import Complete' });
  const events = await eventually(async () => {
    const list = await eventsFor(env.client, 'flow-dv');
    return list.some((e) => stringAt(e, 'reason') === 'ImportSucceeded') ? list : undefined;
  }, { what: 'events of flow-dv' });
  const byReason = new Map(events.map((e) => [stringAt(e, 'reason'), stringAt(e, 'message')]));
  assert.equal(byReason.get('ImportScheduled'), 'Import into flow-dv scheduled');
  assert.equal(byReason.get('ImportInProgress'), 'Import into flow-dv in progress');
  assert.equal(byReason.get('ImportSucceeded'), 'Successfully imported into PVC flow-dv');
  assert.equal(byReason.get('Bound'), 'PVC flow-dv Bound');
  assert.equal(byReason.get('Pending'), 'PVC flow-dv Pending');
});

test('a failed import shows Failed with the cause in the Running condition and a Warning', async () => {
  await env.client.create(resources.dataVolumes, dataVolume('failed-dv', { source: { http: { url: 'http://127.0.0.1:1/missing.img' } }, storage: storage({ storageClassName: 'immediate' }) }));
  await eventually(() => read(env.client, resources.persistentVolumeClaims, 'failed-dv'), { what: 'the PVC' });
  await playNode('failed-dv', { phase: 'Bound' }, { [cdiAnnotations.podPhase]: 'Pending', [cdiAnnotations.podRestarts]: '2', [cdiAnnotations.runningCondition]: 'false', [cdiAnnotations.runningReason]: 'Error', [cdiAnnotations.runningMessage]: 'cannot reach 127.0.0.1:1; retrying' });
  await dvWhere('failed-dv', (dv) => recordAt(dv, 'status')?.restartCount === 2 && stringAt(dv, 'status', 'phase') === 'ImportScheduled', 'ImportScheduled with restartCount 2');
  const cause = 'Unable to connect to http data source: expected status code 200, got 404. Status: 404 Not Found';
  await playNode('failed-dv', undefined, { [cdiAnnotations.podPhase]: 'Failed', [cdiAnnotations.runningMessage]: cause });
  const failed = await dvWhere('failed-dv', phaseIs('Failed'), 'Failed');
  assert.deepEqual(pick(condition(failed, 'Running')), { status: 'False', reason: 'Error', message: cause });
  assert.deepEqual(pick(condition(failed, 'Ready')), { status: 'False', reason: '', message: '' });
  await eventually(async () => (await eventsFor(env.client, 'failed-dv')).some((e) => stringAt(e, 'reason') === 'ImportFailed' && stringAt(e, 'type') === 'Warning'), { what: 'an ImportFailed Warning' });
  await eventually(async () => (await eventsFor(env.client, 'failed-dv')).some((e) => stringAt(e, 'reason') === 'Error' && stringAt(e, 'message') === cause), { what: 'a Warning with the cause' });
});

test('blank and registry sources, and the pvc form as written', async () => {
  await env.client.create(resources.dataVolumes, dataVolume('blank-dv', { source: { blank: {} }, pvc: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: '2Gi' } }, storageClassName: 'immediate' } }));
  await env.client.create(resources.dataVolumes, dataVolume('reg-dv', { source: { registry: { url: 'docker://127.0.0.1:5000/disk:v1', secretRef: 'pull', pullMethod: 'node' } }, storage: storage() }));
  const blank = await eventually(() => read(env.client, resources.persistentVolumeClaims, 'blank-dv'), { what: 'blank PVC' });
  assert.equal(blank.metadata.annotations?.[cdiAnnotations.source], 'none');
  assert.deepEqual(blank.spec, { accessModes: ['ReadWriteMany'], resources: { requests: { storage: '2Gi' } }, storageClassName: 'immediate', volumeMode: 'Filesystem' });
  const reg = await eventually(() => read(env.client, resources.persistentVolumeClaims, 'reg-dv'), { what: 'registry PVC' });
  assert.equal(reg.metadata.annotations?.[cdiAnnotations.source], 'registry');
  assert.equal(reg.metadata.annotations?.[cdiAnnotations.endpoint], 'docker://127.0.0.1:5000/disk:v1');
  assert.equal(reg.metadata.annotations?.[cdiAnnotations.secretName], 'pull');
  assert.equal(reg.metadata.annotations?.[cdiAnnotations.registryImportMethod], 'node');
});

test('an upload DataVolume goes UploadScheduled → UploadReady → Succeeded, with CDI\'s Events; a failed upload shows Failed', async () => {
  await env.client.create(resources.dataVolumes, dataVolume('upload-dv', { source: { upload: {} }, storage: storage() }));
  const pvc = await eventually(() => read(env.client, resources.persistentVolumeClaims, 'upload-dv'), { what: 'upload PVC' });
  assert.equal(pvc.metadata.annotations?.[cdiAnnotations.uploadTarget], '');
  assert.equal(pvc.metadata.annotations?.[cdiAnnotations.source], 'upload');
  // On a WaitForFirstConsumer class too: an upload's claim does not wait for a consumer.
  await dvWhere('upload-dv', phaseIs('Pending'), 'Pending, not WaitForFirstConsumer');
  await playNode('upload-dv', { phase: 'Bound' }, {});
  await dvWhere('upload-dv', phaseIs('UploadScheduled'), 'UploadScheduled once bound');
  await playNode('upload-dv', undefined, { [cdiAnnotations.podPhase]: 'Running', [cdiAnnotations.podReady]: 'true', [cdiAnnotations.runningCondition]: 'true', [cdiAnnotations.runningReason]: 'Pod is running' });
  const ready = await dvWhere('upload-dv', phaseIs('UploadReady'), 'UploadReady');
  assert.deepEqual(pick(condition(ready, 'Running')), { status: 'True', reason: 'Pod is running', message: '' });
  await playNode('upload-dv', undefined, { [cdiAnnotations.podPhase]: 'Failed', [cdiAnnotations.runningCondition]: 'false', [cdiAnnotations.runningReason]: 'Error', [cdiAnnotations.runningMessage]: 'the image is not a usable disk image' });
  const failed = await dvWhere('upload-dv', phaseIs('Failed'), 'Failed');
  assert.deepEqual(pick(condition(failed, 'Running')), { status: 'False', reason: 'Error', message: 'the image is not a usable disk image' });
  await playNode('upload-dv', undefined, { [cdiAnnotations.podPhase]: 'Succeeded', [cdiAnnotations.podReady]: 'false', [cdiAnnotations.runningCondition]: 'false', [cdiAnnotations.runningReason]: 'Completed', [cdiAnnotations.runningMessage]: 'Upload Complete' });
  const done = await dvWhere('upload-dv', phaseIs('Succeeded'), 'Succeeded');
  assert.equal(stringAt(done, 'status', 'progress'), '100.0%');
  const events = await eventually(async () => {
    const list = await eventsFor(env.client, 'upload-dv');
    return list.some((e) => stringAt(e, 'reason') === 'UploadSucceeded') ? list : undefined;
  }, { what: 'events of upload-dv' });
  const byReason = new Map(events.map((e) => [stringAt(e, 'reason'), stringAt(e, 'message')]));
  assert.equal(byReason.get('UploadScheduled'), 'Upload into upload-dv scheduled');
  assert.equal(byReason.get('UploadReady'), 'Upload into upload-dv ready');
  assert.equal(byReason.get('UploadFailed'), 'Upload into upload-dv failed');
  assert.equal(byReason.get('UploadSucceeded'), 'Successfully uploaded into upload-dv');
});

test('a DataSource is followed to its source; a pvc source becomes the claim\'s dataSource, and a bound copy is Succeeded', async () => {
  await env.client.create(resources.dataVolumes, dataVolume('ref-dv', { sourceRef: { kind: 'DataSource', name: 'golden' }, storage: storage() }));
  const missing = await dvWhere('ref-dv', (dv) => condition(dv, 'Bound')?.reason === 'NotFound', 'DataSource NotFound');
  assert.match(String(condition(missing, 'Bound')?.message), /DataSource default\/golden \(spec.sourceRef\) not found/);
  await env.client.create(resources.dataSources, { apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataSource', metadata: { name: 'golden', namespace: 'default' }, spec: { source: { pvc: { name: 'golden-disk', namespace: 'default' } } } });
  const pvc = await eventually(() => read(env.client, resources.persistentVolumeClaims, 'ref-dv'), { what: 'the clone\'s PVC' });
  assert.deepEqual(recordAt(pvc, 'spec', 'dataSource'), { kind: 'PersistentVolumeClaim', name: 'golden-disk' });
  assert.equal(pvc.metadata.annotations?.[cdiAnnotations.podPhase], undefined, 'no import runs for a copy');
  await playNode('ref-dv', { phase: 'Bound' }, {});
  const done = await dvWhere('ref-dv', (dv) => stringAt(dv, 'status', 'phase') === 'Succeeded', 'the copy to succeed');
  assert.equal(stringAt(done, 'status', 'progress'), '100.0%');
});

test('a snapshot source in another namespace is refused; a pvc source there becomes CDI\'s clone annotation without a dataSource', async () => {
  await env.client.create(resources.dataVolumes, dataVolume('far-dv', { source: { snapshot: { namespace: 'elsewhere', name: 'monday' } }, storage: storage() }));
  const far = await dvWhere('far-dv', (dv) => condition(dv, 'Ready')?.reason === 'UnsupportedSource', 'cross-namespace refused');
  assert.match(String(condition(far, 'Ready')?.message), /restores VolumeSnapshots only within a namespace/);
  assert.equal(await read(env.client, resources.persistentVolumeClaims, 'far-dv'), undefined);
  await env.client.create(resources.dataVolumes, dataVolume('far-clone', { source: { pvc: { namespace: 'elsewhere', name: 'golden' } }, storage: storage() }));
  const pvc = await eventually(() => read(env.client, resources.persistentVolumeClaims, 'far-clone'), { what: 'the cross-namespace clone\'s PVC' });
  assert.equal(pvc.metadata.annotations?.['k8s.io/CloneRequest'], 'elsewhere/golden');
  assert.equal(recordAt(pvc, 'spec', 'dataSource'), undefined, 'Kubernetes\' dataSource names only claims of the claim\'s namespace');
});

test('deleting the DataVolume deletes its PVC', async () => {
  await env.client.create(resources.dataVolumes, dataVolume('gone-dv', { source: { blank: {} }, storage: storage() }));
  await eventually(() => read(env.client, resources.persistentVolumeClaims, 'gone-dv'), { what: 'the PVC' });
  await env.client.delete(resources.dataVolumes, 'default', 'gone-dv');
  // Gone, or held only by kubernetes.io/pvc-protection until nothing uses it.
  await eventually(async () => {
    const pvc = await read(env.client, resources.persistentVolumeClaims, 'gone-dv');
    return pvc === undefined || pvc.metadata.deletionTimestamp !== undefined;
  }, { what: 'the PVC to be deleted' });
});

const cdiExamples = sharedExamples('cdi-examples');

test('CDI\'s http, registry and blank examples apply unchanged and make PVCs', { skip: existsSync(cdiExamples) ? false : `${cdiExamples} does not exist on this machine` }, async () => {
  const dir = cdiExamples;
  for (const file of ['blank-image-datavolume.yaml', 'registry-image-datavolume.yaml', 'import-kubevirt-datavolume-secret.yaml', 'import-kubevirt-block-datavolume.yaml']) {
    const manifest = parse(await readFile(join(dir, file), 'utf8')) as KObject;
    await env.client.create(resources.dataVolumes, { ...manifest, metadata: { ...manifest.metadata, namespace: 'default' } });
    const pvc = await eventually(() => read(env.client, resources.persistentVolumeClaims, manifest.metadata.name ?? ''), { what: `the PVC of ${file}` });
    assert.ok(pvc.metadata.annotations?.[cdiAnnotations.source] !== undefined, file);
  }
});

test('a VM\'s dataVolumeTemplates become DataVolumes owned by it; the VMI waits for them', async () => {
  const template = { metadata: { name: 'vm-root' }, spec: { source: { http: { url: 'http://127.0.0.1:1/disk.img' } }, storage: storage({ storageClassName: 'immediate' }) } };
  const manifest = vmManifest('dv-vm', { runStrategy: 'Always', dataVolumeTemplates: [template] }, {
    volumes: [{ name: 'root', dataVolume: { name: 'vm-root' } }],
  });
  const vm = await env.client.create(resources.virtualMachines, manifest);
  const dv = await eventually(() => read(env.client, resources.dataVolumes, 'vm-root'), { what: 'the DataVolume from the template' });
  assert.deepEqual(dv.metadata.ownerReferences?.map((r) => [r.kind, r.name, r.uid, r.controller]), [['VirtualMachine', 'dv-vm', vm.metadata.uid, true]]);
  await eventually(async () => (await printable(env.client, 'dv-vm')) === 'Provisioning', { what: 'Provisioning' });
  assert.equal(await read(env.client, resources.virtualMachineInstances, 'dv-vm'), undefined);
  await playNode('vm-root', { phase: 'Bound' }, { [cdiAnnotations.podPhase]: 'Pending', [cdiAnnotations.runningCondition]: 'false', [cdiAnnotations.runningReason]: 'Error', [cdiAnnotations.runningMessage]: 'cannot reach 127.0.0.1:1' });
  await eventually(async () => (await printable(env.client, 'dv-vm')) === 'DataVolumeError', { what: 'DataVolumeError' });
  await playNode('vm-root', undefined, { [cdiAnnotations.podPhase]: 'Succeeded', [cdiAnnotations.runningReason]: 'Completed', [cdiAnnotations.runningMessage]: 'Import Complete' });
  await eventually(() => read(env.client, resources.virtualMachineInstances, 'dv-vm'), { what: 'the VMI once the DataVolume succeeded' });
});

test('a WaitForFirstConsumer DataVolume lets the VMI be created, so scheduling can bind it', async () => {
  const template = { metadata: { name: 'wffc-root' }, spec: { source: { blank: {} }, storage: storage() } };
  await env.client.create(resources.virtualMachines, vmManifest('wffc-vm', { runStrategy: 'Always', dataVolumeTemplates: [template] }, { volumes: [{ name: 'root', dataVolume: { name: 'wffc-root' } }] }));
  await dvWhere('wffc-root', phaseIs('WaitForFirstConsumer'), 'WaitForFirstConsumer');
  await eventually(() => read(env.client, resources.virtualMachineInstances, 'wffc-vm'), { what: 'the VMI of a WaitForFirstConsumer DataVolume' });
});

function pick(c: Record<string, unknown> | undefined): Record<string, unknown> {
  return { status: c?.status, reason: c?.reason, message: c?.message };
}
