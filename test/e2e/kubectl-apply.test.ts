/**
 * `kubectl apply` (client-side, three-way) for a built-in kind, which
 * kubectl patches with a strategic merge patch, and for a KubeVirt
 * VirtualMachine, which it patches with a JSON merge patch; and the errors
 * kubectl users see most.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'yaml';
import { kubectlSuites } from './support.js';

interface Obj {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string>; generation?: number };
  data?: Record<string, string>;
  spec?: { runStrategy?: string; template?: { spec?: Record<string, unknown> } };
}

function configMap(data: string, labels: string): string {
  return `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {${labels}}
data:
${data}`;
}

function virtualMachine(runStrategy: string, labels: string, extraSpec: string): string {
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: vm-apply
  labels: {${labels}}
spec:
  runStrategy: ${runStrategy}
  template:
    metadata:
      labels: {kubevirt.io/vm: vm-apply}
    spec:
${extraSpec}      domain:
        devices:
          disks:
          - name: containerdisk
            disk: {bus: virtio}
        resources:
          requests: {memory: 64Mi}
      volumes:
      - name: containerdisk
        containerDisk: {image: quay.io/kubevirt/cirros-container-disk-demo}
`;
}

/** The patch content type kubectl sent, from the request headers in its `-v=8` log. */
function patchType(stderr: string): string | undefined {
  return /Content-Type: (application\/(?:strategic-merge-patch|merge-patch|json-patch)\+json)/.exec(stderr)?.[1];
}

kubectlSuites('kubectl apply', (k) => {
  test('apply creates a ConfigMap, then a changed manifest is three-way merged with a strategic merge patch', async () => {
    const ns = await k.namespace('apply-cm');
    const first = configMap('  a: "1"\n  b: "2"\n', 'app: web, tier: front');
    assert.equal(await k.apply(first, '-n', ns), 'configmap/settings created\n');
    // A change made outside the manifest must survive the next apply.
    assert.equal(await k.ok(['annotate', 'cm', 'settings', '-n', ns, 'owner=ops']), 'configmap/settings annotated\n');

    const second = configMap('  a: "11"\n  c: "3"\n', 'app: web');
    const r = await k.run(['apply', '-f', '-', '-n', ns, '-v=8'], { stdin: second });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'configmap/settings configured\n');
    assert.equal(patchType(r.stderr), 'application/strategic-merge-patch+json');

    const live = parse(await k.ok(['get', 'cm', 'settings', '-n', ns, '-o', 'yaml'])) as Obj;
    assert.deepEqual(live.data, { a: '11', c: '3' });
    assert.deepEqual(live.metadata.labels, { app: 'web' });
    assert.equal(live.metadata.annotations?.owner, 'ops');
    const lastApplied = JSON.parse(live.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'] ?? '{}') as Obj;
    assert.deepEqual(lastApplied.data, { a: '11', c: '3' });

    assert.equal(await k.apply(second, '-n', ns), 'configmap/settings unchanged\n');
  });

  test('apply creates a VirtualMachine, then a changed manifest is three-way merged with a JSON merge patch', async () => {
    const ns = await k.namespace('apply-vm');
    const first = virtualMachine('Halted', 'app: vm, tier: back', '      terminationGracePeriodSeconds: 30\n');
    assert.equal(await k.apply(first, '-n', ns), 'virtualmachine.kubevirt.io/vm-apply created\n');
    assert.equal(await k.ok(['label', 'vm', 'vm-apply', '-n', ns, 'team=virt']), 'virtualmachine.kubevirt.io/vm-apply labeled\n');

    const second = virtualMachine('Always', 'app: vm', '');
    const r = await k.run(['apply', '-f', '-', '-n', ns, '-v=8'], { stdin: second });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'virtualmachine.kubevirt.io/vm-apply configured\n');
    assert.equal(patchType(r.stderr), 'application/merge-patch+json');

    const live = parse(await k.ok(['get', 'vm', 'vm-apply', '-n', ns, '-o', 'yaml'])) as Obj;
    assert.equal(live.spec?.runStrategy, 'Always');
    assert.equal(live.spec?.template?.spec?.terminationGracePeriodSeconds, undefined, 'a field removed from the manifest is removed');
    assert.deepEqual(live.metadata.labels, { app: 'vm', team: 'virt' });
    assert.equal(live.metadata.generation, 2);

    assert.equal(await k.apply(second, '-n', ns), 'virtualmachine.kubevirt.io/vm-apply unchanged\n');
  });

  test('apply of a Service merges its ports by key, keeping a change made outside the manifest', async () => {
    const ns = await k.namespace('apply-svc');
    const service = (ports: string): string => `apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n${ports}`;
    const first = service('  - {name: http, port: 80, targetPort: 8080}\n  - {name: https, port: 443, targetPort: 8443}\n  - {name: ssh, port: 22}\n');
    assert.equal(await k.apply(first, '-n', ns), 'service/web created\n');
    await k.ok(['patch', 'svc', 'web', '-n', ns, '--type=strategic', '-p', '{"spec":{"ports":[{"port":22,"targetPort":2222}]}}']);
    const second = service('  - {name: ssh, port: 22}\n  - {name: http, port: 80, targetPort: 9090}\n');
    const r = await k.run(['apply', '-f', '-', '-n', ns, '-v=8'], { stdin: second });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'service/web configured\n');
    // kubectl (1.28 from its compiled-in types, 1.29+ from /openapi/v3) sends a merge-keyed patch with a delete directive.
    assert.match(r.stderr, /\$setElementOrder\/ports/);
    const live = (await k.json(['svc', 'web', '-n', ns])) as { spec: { ports: { name: string; port: number; targetPort?: number }[] } };
    assert.deepEqual(
      live.spec.ports.map((p) => `${p.name}:${p.port}->${String(p.targetPort)}`),
      ['ssh:22->2222', 'http:80->9090'],
    );
  });

  test('get of a missing VirtualMachine prints the NotFound status', async () => {
    const r = await k.fails(['get', 'vm', 'nope']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'Error from server (NotFound): virtualmachines.kubevirt.io "nope" not found\n');
    assert.equal(r.stdout, '');
  });

  test('apply of a VirtualMachine with both running and runStrategy fails naming both fields', async () => {
    const ns = await k.namespace('apply-invalid');
    const manifest = virtualMachine('Always', 'app: vm', '').replace('  runStrategy: Always\n', '  running: true\n  runStrategy: Always\n');
    const r = await k.fails(['apply', '-f', '-', '-n', ns], { stdin: manifest });
    assert.match(r.stderr, /^The VirtualMachine "vm-apply" is invalid: spec\.running: Running and RunStrategy are mutually exclusive/);
    const missing = await k.fails(['get', 'vm', 'vm-apply', '-n', ns]);
    assert.match(missing.stderr, /NotFound/);
  });

  test('apply rejects an unknown field (strict field validation) with its path', async () => {
    const ns = await k.namespace('apply-strict');
    const manifest = virtualMachine('Always', 'app: vm', '').replace('  runStrategy: Always\n', '  runStrategy: Always\n  bogusField: 1\n');
    const r = await k.fails(['apply', '-f', '-', '-n', ns], { stdin: manifest });
    assert.equal(r.stderr, 'Error from server (BadRequest): error when creating "STDIN": strict decoding error: unknown field "spec.bogusField"\n');
  });
});
