/**
 * Reading with kubectl: `get` in every output format, selectors, KubeVirt's
 * printer columns (server-side Tables), `get -w`, `describe`, `explain` and
 * discovery (`api-resources`, `api-versions`, `version`).
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { parse } from 'yaml';
import { version as serverVersion } from '../../src/apiserver/version.js';
import type { Kubectl } from './support.js';
import { kubectlSuites, parseTable, rowNamed, vmManifest, youngAge } from './support.js';

const vmi = `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: vmi-cols
spec:
  domain:
    devices: {}
    resources:
      requests: {memory: 64Mi}
`;

/** Two namespaces: `get-a` with vm-a (app=web, tier=front) and vm-b (app=db); `get-b` with vm-c (app=web). */
async function seed(k: Kubectl): Promise<void> {
  await k.namespace('get-a');
  await k.namespace('get-b');
  assert.equal(await k.apply(`${vmManifest('vm-a', 'app: web, tier: front')}---\n${vmManifest('vm-b', 'app: db')}`, '-n', 'get-a'), 'virtualmachine.kubevirt.io/vm-a created\nvirtualmachine.kubevirt.io/vm-b created\n');
  assert.equal(await k.apply(vmManifest('vm-c', 'app: web'), '-n', 'get-b'), 'virtualmachine.kubevirt.io/vm-c created\n');
}

kubectlSuites('kubectl get', (k) => {
  before(() => seed(k));

  test('get vm shows KubeVirt columns NAME AGE STATUS READY', async () => {
    const table = parseTable(await k.ok(['get', 'vm', '-n', 'get-a']));
    assert.deepEqual(table.header, ['NAME', 'AGE', 'STATUS', 'READY']);
    assert.deepEqual(table.rows.map((r) => r.NAME), ['vm-a', 'vm-b']);
    assert.match(rowNamed(table, 'vm-a').AGE ?? '', youngAge);
    assert.equal(rowNamed(table, 'vm-a').STATUS, '');
  });

  test('status set through the status subresource shows in the STATUS and READY columns', async () => {
    const patch = JSON.stringify({ status: { printableStatus: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } });
    assert.equal(await k.ok(['patch', 'vm', 'vm-b', '-n', 'get-a', '--subresource=status', '--type=merge', '-p', patch]), 'virtualmachine.kubevirt.io/vm-b patched\n');
    const table = parseTable(await k.ok(['get', 'vm', '-n', 'get-a']));
    assert.deepEqual(rowNamed(table, 'vm-b'), { ...rowNamed(table, 'vm-b'), STATUS: 'Running', READY: 'True' });
    assert.deepEqual(rowNamed(table, 'vm-a'), { ...rowNamed(table, 'vm-a'), STATUS: '', READY: '' });
  });

  test('-o yaml and -o json print the object', async () => {
    const y = parse(await k.ok(['get', 'vm', 'vm-a', '-n', 'get-a', '-o', 'yaml'])) as { kind: string; metadata: { name: string; namespace: string; labels: object; uid: string }; spec: { runStrategy: string } };
    assert.equal(y.kind, 'VirtualMachine');
    assert.equal(y.metadata.name, 'vm-a');
    assert.equal(y.metadata.namespace, 'get-a');
    assert.deepEqual(y.metadata.labels, { app: 'web', tier: 'front' });
    assert.equal(y.spec.runStrategy, 'Halted');
    const list = await k.json(['vm', '-n', 'get-a']);
    assert.equal(list.kind, 'List');
    const items = list.items as { metadata: { name: string; uid: string } }[];
    assert.deepEqual(items.map((i) => i.metadata.name), ['vm-a', 'vm-b']);
    assert.equal(items[0]?.metadata.uid, y.metadata.uid);
  });

  test('-o wide, -o name and -o jsonpath', async () => {
    const wide = parseTable(await k.ok(['get', 'vm', '-n', 'get-a', '-o', 'wide']));
    assert.deepEqual(wide.header, ['NAME', 'AGE', 'STATUS', 'READY']);
    assert.equal(await k.ok(['get', 'vm', '-n', 'get-a', '-o', 'name']), 'virtualmachine.kubevirt.io/vm-a\nvirtualmachine.kubevirt.io/vm-b\n');
    assert.equal(await k.jsonpath(['vm', '-n', 'get-a'], '{.items[*].metadata.name}'), 'vm-a vm-b');
    assert.equal(await k.jsonpath(['vm', 'vm-b', '-n', 'get-a'], "{.status.conditions[?(@.type=='Ready')].status}"), 'True');
  });

  test('--show-labels, -l and --field-selector', async () => {
    const labelled = parseTable(await k.ok(['get', 'vm', '-n', 'get-a', '--show-labels']));
    assert.deepEqual(labelled.header, ['NAME', 'AGE', 'STATUS', 'READY', 'LABELS']);
    assert.equal(rowNamed(labelled, 'vm-a').LABELS, 'app=web,tier=front');
    assert.equal(rowNamed(labelled, 'vm-b').LABELS, 'app=db');
    assert.equal(await k.ok(['get', 'vm', '-n', 'get-a', '-l', 'app=web', '-o', 'name']), 'virtualmachine.kubevirt.io/vm-a\n');
    assert.equal(await k.ok(['get', 'vm', '-n', 'get-a', '-l', 'app in (web,db),!tier', '-o', 'name']), 'virtualmachine.kubevirt.io/vm-b\n');
    assert.equal(await k.ok(['get', 'vm', '-n', 'get-a', '--field-selector', 'metadata.name=vm-b', '-o', 'name']), 'virtualmachine.kubevirt.io/vm-b\n');
    const none = await k.run(['get', 'vm', '-n', 'get-a', '-l', 'app=nothing']);
    assert.equal(none.code, 0);
    assert.equal(none.stdout, '');
    assert.equal(none.stderr, 'No resources found in get-a namespace.\n');
  });

  test('-A lists every namespace with a NAMESPACE column', async () => {
    const table = parseTable(await k.ok(['get', 'vm', '-A', '-l', 'app=web']));
    assert.deepEqual(table.header, ['NAMESPACE', 'NAME', 'AGE', 'STATUS', 'READY']);
    assert.deepEqual(table.rows.map((r) => `${r.NAMESPACE ?? ''}/${r.NAME ?? ''}`), ['get-a/vm-a', 'get-b/vm-c']);
  });

  test('get vmi shows KubeVirt columns, with the wide ones only in -o wide', async () => {
    assert.equal(await k.apply(vmi, '-n', 'get-b'), 'virtualmachineinstance.kubevirt.io/vmi-cols created\n');
    const plain = parseTable(await k.ok(['get', 'vmi', '-n', 'get-b']));
    assert.deepEqual(plain.header, ['NAME', 'AGE', 'PHASE', 'IP', 'NODENAME', 'READY']);
    // VMIs have no status subresource upstream: virt-handler writes status with the object.
    const status = { status: { phase: 'Running', nodeName: 'node-1', interfaces: [{ ipAddress: '10.0.0.7' }], conditions: [{ type: 'Ready', status: 'True' }, { type: 'LiveMigratable', status: 'False' }] } };
    await k.ok(['patch', 'vmi', 'vmi-cols', '-n', 'get-b', '--type=merge', '-p', JSON.stringify(status)]);
    const wide = parseTable(await k.ok(['get', 'vmi', '-n', 'get-b', '-o', 'wide']));
    assert.deepEqual(wide.header, ['NAME', 'AGE', 'PHASE', 'IP', 'NODENAME', 'READY', 'LIVE-MIGRATABLE', 'PAUSED']);
    const row = rowNamed(wide, 'vmi-cols');
    assert.deepEqual({ ...row, AGE: '' }, { NAME: 'vmi-cols', AGE: '', PHASE: 'Running', IP: '10.0.0.7', NODENAME: 'node-1', READY: 'True', 'LIVE-MIGRATABLE': 'False', PAUSED: '' });
  });

  test('get -w --output-watch-events prints ADDED, MODIFIED and DELETED as they happen', async () => {
    const ns = await k.namespace('get-watch');
    await k.apply(vmManifest('vm-w', 'app: watch'), '-n', ns);
    // -L puts the label last, so rows split on blanks stay readable with empty STATUS and READY cells.
    const watch = k.background(['get', 'vm', '-n', ns, '-w', '--output-watch-events', '-L', 'stage']);
    try {
      const rows = (): string[][] => watch.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => l.trim().split(/\s+/));
      await watch.until('the ADDED row', () => rows().some((r) => r[0] === 'ADDED' && r[1] === 'vm-w'));
      assert.deepEqual(rows()[0], ['EVENT', 'NAME', 'AGE', 'STATUS', 'READY', 'STAGE']);
      await k.ok(['label', 'vm', 'vm-w', '-n', ns, 'stage=two']);
      await watch.until('the MODIFIED row', () => rows().some((r) => r[0] === 'MODIFIED' && r[1] === 'vm-w' && r.at(-1) === 'two'));
      await k.ok(['delete', 'vm', 'vm-w', '-n', ns]);
      await watch.until('the DELETED row', () => rows().some((r) => r[0] === 'DELETED' && r[1] === 'vm-w'));
      const events = rows().slice(1).map((r) => r[0]);
      assert.equal(events[0], 'ADDED');
      assert.equal(events.at(-1), 'DELETED');
      assert.ok(events.slice(1, -1).every((e) => e === 'MODIFIED'), events.join(' '));
    } finally {
      await watch.stop();
    }
  });

  test('plain get -w prints the list, then a row per change', async () => {
    const ns = await k.namespace('get-watch-plain');
    const cm = (name: string): string => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n`;
    await k.apply(cm('first'), '-n', ns);
    const watch = k.background(['get', 'cm', '-n', ns, '-w']);
    try {
      const names = (): string[] => watch.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => l.trim().split(/\s+/)[0] ?? '');
      await watch.until('the first row', () => names().includes('first'));
      await k.apply(cm('second'), '-n', ns);
      await watch.until('the second row', () => names().includes('second'));
      assert.deepEqual(names(), ['NAME', 'first', 'second']);
    } finally {
      await watch.stop();
    }
  });

  test('describe a VirtualMachine', async () => {
    const out = await k.ok(['describe', 'vm', 'vm-b', '-n', 'get-a']);
    assert.match(out, /^Name:\s+vm-b$/m);
    assert.match(out, /^Namespace:\s+get-a$/m);
    assert.match(out, /^Labels:\s+app=db$/m);
    assert.match(out, /^API Version:\s+kubevirt\.io\/v1$/m);
    assert.match(out, /^Kind:\s+VirtualMachine$/m);
    assert.match(out, /^ {2}Run Strategy:\s+Halted$/m);
    assert.match(out, /^ {2}Printable Status:\s+Running$/m);
    assert.match(out, /^Events:\s+<none>$/m);
  });

  test('describe a ConfigMap', async () => {
    await k.apply('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: described\n  labels: {app: web}\ndata:\n  greeting: hello\n', '-n', 'get-a');
    const out = await k.ok(['describe', 'cm', 'described', '-n', 'get-a']);
    assert.match(out, /^Name:\s+described$/m);
    assert.match(out, /^Namespace:\s+get-a$/m);
    assert.match(out, /^Labels:\s+app=web$/m);
    assert.match(out, /^Data\n====\ngreeting:\n----\nhello\n/m);
    assert.match(out, /^Events:\s+<none>$/m);
  });

  test('explain vm.spec.template.spec.domain.devices', async () => {
    const out = await k.ok(['explain', 'vm.spec.template.spec.domain.devices']);
    assert.match(out, /^GROUP:\s+kubevirt\.io$/m);
    assert.match(out, /^KIND:\s+VirtualMachine$/m);
    assert.match(out, /^VERSION:\s+v1$/m);
    assert.match(out, /^FIELD: devices <Object>$/m);
    assert.match(out, /^ {2}disks\t<\[\]Object>$/m);
    assert.match(out, /^ {2}interfaces\t<\[\]Object>$/m);
    assert.match(out, /^ {2}autoattachGraphicsDevice\t<boolean>$/m);
  });

  test('explain dv.spec.source', async () => {
    const out = await k.ok(['explain', 'dv.spec.source']);
    assert.match(out, /^GROUP:\s+cdi\.kubevirt\.io$/m);
    assert.match(out, /^KIND:\s+DataVolume$/m);
    assert.match(out, /^VERSION:\s+v1beta1$/m);
    assert.match(out, /^FIELD: source <Object>$/m);
    for (const field of ['blank', 'http', 'pvc', 'registry', 's3']) assert.match(out, new RegExp(`^ {2}${field}\\t<Object>$`, 'm'));
  });

  test('explain configmap', async () => {
    const out = await k.ok(['explain', 'configmap']);
    assert.match(out, /^KIND:\s+ConfigMap$/m);
    assert.match(out, /^VERSION:\s+v1$/m);
    assert.match(out, /^ {4}ConfigMap holds configuration data for pods to consume\.$/m);
    assert.match(out, /^ {2}data\t<map\[string\]string>$/m);
    assert.match(out, /^ {2}binaryData\t<map\[string\]string>$/m);
    assert.match(out, /^ {2}immutable\t<boolean>$/m);
  });

  test('api-resources lists KubeVirt kinds with their short names', async () => {
    const table = parseTable(await k.ok(['api-resources']));
    assert.deepEqual(table.header, ['NAME', 'SHORTNAMES', 'APIVERSION', 'NAMESPACED', 'KIND']);
    const expected: Record<string, Record<string, string>> = {
      virtualmachines: { NAME: 'virtualmachines', SHORTNAMES: 'vm,vms', APIVERSION: 'kubevirt.io/v1', NAMESPACED: 'true', KIND: 'VirtualMachine' },
      virtualmachineinstances: { NAME: 'virtualmachineinstances', SHORTNAMES: 'vmi,vmis', APIVERSION: 'kubevirt.io/v1', NAMESPACED: 'true', KIND: 'VirtualMachineInstance' },
      datavolumes: { NAME: 'datavolumes', SHORTNAMES: 'dv,dvs', APIVERSION: 'cdi.kubevirt.io/v1beta1', NAMESPACED: 'true', KIND: 'DataVolume' },
      configmaps: { NAME: 'configmaps', SHORTNAMES: 'cm', APIVERSION: 'v1', NAMESPACED: 'true', KIND: 'ConfigMap' },
      namespaces: { NAME: 'namespaces', SHORTNAMES: 'ns', APIVERSION: 'v1', NAMESPACED: 'false', KIND: 'Namespace' },
    };
    for (const [name, row] of Object.entries(expected)) assert.deepEqual(rowNamed(table, name), row);
    const kubevirt = (await k.ok(['api-resources', '--api-group=kubevirt.io', '-o', 'name'])).trim().split('\n');
    for (const name of ['virtualmachines.kubevirt.io', 'virtualmachineinstances.kubevirt.io', 'virtualmachineinstancemigrations.kubevirt.io']) {
      assert.ok(kubevirt.includes(name), `${name} missing from ${kubevirt.join(', ')}`);
    }
    assert.ok(!kubevirt.includes('datavolumes.cdi.kubevirt.io'), '--api-group filters by group');
  });

  test('api-versions lists the core, KubeVirt and CDI group-versions', async () => {
    const versions = (await k.ok(['api-versions'])).trim().split('\n');
    for (const gv of ['v1', 'kubevirt.io/v1', 'cdi.kubevirt.io/v1beta1', 'apiextensions.k8s.io/v1', 'instancetype.kubevirt.io/v1beta1']) {
      assert.ok(versions.includes(gv), `${gv} missing from ${versions.join(', ')}`);
    }
  });

  test('version reports the server version from /version', async () => {
    const v = JSON.parse(await k.ok(['version', '-o', 'json'])) as { clientVersion: { minor: string }; serverVersion: typeof serverVersion };
    assert.equal(v.clientVersion.minor, String(k.minor));
    assert.deepEqual(v.serverVersion, serverVersion);
    const text = await k.ok(['version']);
    assert.match(text, new RegExp(`^Server Version: ${serverVersion.gitVersion.replace(/[.+]/g, '\\$&')}$`, 'm'));
  });
});
