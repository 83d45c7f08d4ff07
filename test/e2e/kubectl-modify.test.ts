/**
 * Changing objects in place with kubectl: `patch` of each type, `label`,
 * `annotate` and `edit` with a scripted editor.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { kubectlSuites, vmManifest } from './support.js';

const ns = 'modify';

const configMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: cm-mod
data:
  a: "1"
  b: "2"
`;

/** An EDITOR: a script that rewrites the file kubectl hands it with sed. */
function editorScript(dir: string, name: string, sedExpression: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\nexec sed -i '${sedExpression}' "$1"\n`);
  chmodSync(path, 0o755);
  return path;
}

kubectlSuites('kubectl patch, label, annotate, edit', (k) => {
  let scratch = '';
  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'vireo-e2e-editor-'));
    await k.namespace(ns);
    assert.equal(await k.apply(`${configMap}---\n${vmManifest('vm-mod')}`, '-n', ns), 'configmap/cm-mod created\nvirtualmachine.kubevirt.io/vm-mod created\n');
  });
  after(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  const data = async (): Promise<unknown> => JSON.parse(await k.jsonpath(['cm', 'cm-mod', '-n', ns], '{.data}'));

  test('patch --type=json', async () => {
    assert.equal(await k.ok(['patch', 'cm', 'cm-mod', '-n', ns, '--type=json', '-p', '[{"op":"add","path":"/data/j","value":"jv"},{"op":"remove","path":"/data/b"}]']), 'configmap/cm-mod patched\n');
    assert.deepEqual(await data(), { a: '1', j: 'jv' });
    await k.ok(['patch', 'vm', 'vm-mod', '-n', ns, '--type=json', '-p', '[{"op":"replace","path":"/spec/runStrategy","value":"Manual"}]']);
    assert.equal(await k.jsonpath(['vm', 'vm-mod', '-n', ns], '{.spec.runStrategy}'), 'Manual');
    const failed = await k.fails(['patch', 'cm', 'cm-mod', '-n', ns, '--type=json', '-p', '[{"op":"test","path":"/data/a","value":"wrong"},{"op":"add","path":"/data/x","value":"y"}]']);
    assert.match(failed.stderr, /^The request is invalid: .*testing value \/data\/a failed/);
    assert.deepEqual(await data(), { a: '1', j: 'jv' }, 'a failed test op changes nothing');
  });

  test('patch --type=merge', async () => {
    assert.equal(await k.ok(['patch', 'cm', 'cm-mod', '-n', ns, '--type=merge', '-p', '{"data":{"m":"mv","j":null}}']), 'configmap/cm-mod patched\n');
    assert.deepEqual(await data(), { a: '1', m: 'mv' });
    await k.ok(['patch', 'vm', 'vm-mod', '-n', ns, '--type=merge', '-p', '{"spec":{"runStrategy":"Halted","template":{"spec":{"terminationGracePeriodSeconds":5}}}}']);
    assert.equal(await k.jsonpath(['vm', 'vm-mod', '-n', ns], '{.spec.runStrategy}/{.spec.template.spec.terminationGracePeriodSeconds}'), 'Halted/5');
  });

  test('patch --type=strategic on a built-in kind, with a $patch directive', async () => {
    assert.equal(await k.ok(['patch', 'cm', 'cm-mod', '-n', ns, '--type=strategic', '-p', '{"data":{"s":"sv"}}']), 'configmap/cm-mod patched\n');
    assert.deepEqual(await data(), { a: '1', m: 'mv', s: 'sv' });
    // `$patch: replace` is strategic-merge only: the map is replaced, not merged.
    await k.ok(['patch', 'cm', 'cm-mod', '-n', ns, '--type=strategic', '-p', '{"data":{"$patch":"replace","only":"1"}}']);
    assert.deepEqual(await data(), { only: '1' });
  });

  test('patch --type=strategic merges finalizers as a set, as Kubernetes does', async () => {
    await k.apply('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-fin\n  finalizers: [e2e.vireo.dev/a]\n', '-n', ns);
    const finalizers = async (): Promise<unknown> => JSON.parse((await k.jsonpath(['cm', 'cm-fin', '-n', ns], '{.metadata.finalizers}')) || '[]');
    await k.ok(['patch', 'cm', 'cm-fin', '-n', ns, '--type=strategic', '-p', '{"metadata":{"finalizers":["e2e.vireo.dev/b"]}}']);
    // Patched items first, then the ones only the server had (strategicpatch's normalizeElementOrder).
    assert.deepEqual(await finalizers(), ['e2e.vireo.dev/b', 'e2e.vireo.dev/a']);
    await k.ok(['patch', 'cm', 'cm-fin', '-n', ns, '--type=strategic', '-p', '{"metadata":{"$deleteFromPrimitiveList/finalizers":["e2e.vireo.dev/a","e2e.vireo.dev/b"]}}']);
    assert.deepEqual(await finalizers(), []);
    assert.equal(await k.ok(['delete', 'cm', 'cm-fin', '-n', ns]), 'configmap "cm-fin" deleted\n');
  });

  test('patch --type=strategic on a custom resource fails as on Kubernetes (415)', async () => {
    const r = await k.fails(['patch', 'vm', 'vm-mod', '-n', ns, '--type=strategic', '-p', '{"spec":{"runStrategy":"Always"}}']);
    assert.equal(
      r.stderr,
      'error: application/strategic-merge-patch+json is not supported by kubevirt.io/v1, Kind=VirtualMachine: the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml\n',
    );
    assert.equal(await k.jsonpath(['vm', 'vm-mod', '-n', ns], '{.spec.runStrategy}'), 'Halted');
  });

  test('label: add, refuse to overwrite without --overwrite, overwrite, remove', async () => {
    const labels = async (): Promise<unknown> => JSON.parse((await k.jsonpath(['vm', 'vm-mod', '-n', ns], '{.metadata.labels}')) || '{}');
    assert.equal(await k.ok(['label', 'vm', 'vm-mod', '-n', ns, 'env=dev', 'team=virt']), 'virtualmachine.kubevirt.io/vm-mod labeled\n');
    assert.deepEqual(await labels(), { env: 'dev', team: 'virt' });
    const refused = await k.fails(['label', 'vm', 'vm-mod', '-n', ns, 'env=prod']);
    assert.equal(refused.stderr, "error: 'env' already has a value (dev), and --overwrite is false\n");
    assert.equal(await k.ok(['label', 'vm', 'vm-mod', '-n', ns, 'env=prod', '--overwrite']), 'virtualmachine.kubevirt.io/vm-mod labeled\n');
    assert.deepEqual(await labels(), { env: 'prod', team: 'virt' });
    assert.equal(await k.ok(['label', 'vm', 'vm-mod', '-n', ns, 'env-']), 'virtualmachine.kubevirt.io/vm-mod unlabeled\n');
    assert.deepEqual(await labels(), { team: 'virt' });
  });

  test('annotate: add, refuse to overwrite without --overwrite, overwrite, remove', async () => {
    const note = (): Promise<string> => k.jsonpath(['cm', 'cm-mod', '-n', ns], '{.metadata.annotations.note}');
    assert.equal(await k.ok(['annotate', 'cm', 'cm-mod', '-n', ns, 'note=first']), 'configmap/cm-mod annotated\n');
    assert.equal(await note(), 'first');
    const refused = await k.fails(['annotate', 'cm', 'cm-mod', '-n', ns, 'note=second']);
    assert.equal(refused.stderr, "error: --overwrite is false but found the following declared annotation(s): 'note' already has a value (first)\n");
    await k.ok(['annotate', 'cm', 'cm-mod', '-n', ns, 'note=second', '--overwrite']);
    assert.equal(await note(), 'second');
    assert.equal(await k.ok(['annotate', 'cm', 'cm-mod', '-n', ns, 'note-']), 'configmap/cm-mod annotated\n');
    const annotations = JSON.parse(await k.jsonpath(['cm', 'cm-mod', '-n', ns], '{.metadata.annotations}')) as Record<string, string>;
    assert.deepEqual(Object.keys(annotations), ['kubectl.kubernetes.io/last-applied-configuration']);
  });

  test('edit a VirtualMachine with a scripted EDITOR', async () => {
    const editor = editorScript(scratch, 'vm-editor.sh', 's/runStrategy: Halted/runStrategy: Always/');
    const before = await k.json(['vm', 'vm-mod', '-n', ns]);
    const out = await k.ok(['edit', 'vm', 'vm-mod', '-n', ns], { env: { EDITOR: editor } });
    assert.equal(out, 'virtualmachine.kubevirt.io/vm-mod edited\n');
    const afterEdit = await k.json(['vm', 'vm-mod', '-n', ns]);
    assert.equal((afterEdit.spec as { runStrategy: string }).runStrategy, 'Always');
    assert.equal((afterEdit.metadata as { generation: number }).generation, (before.metadata as { generation: number }).generation + 1);
  });

  test('edit a ConfigMap with a scripted EDITOR; an unchanged file cancels the edit', async () => {
    await k.ok(['patch', 'cm', 'cm-mod', '-n', ns, '--type=merge', '-p', '{"data":{"colour":"red"}}']);
    const editor = editorScript(scratch, 'cm-editor.sh', 's/colour: red/colour: blue/');
    assert.equal(await k.ok(['edit', 'cm', 'cm-mod', '-n', ns], { env: { EDITOR: editor } }), 'configmap/cm-mod edited\n');
    assert.equal(await k.jsonpath(['cm', 'cm-mod', '-n', ns], '{.data.colour}'), 'blue');
    const noop = await k.run(['edit', 'cm', 'cm-mod', '-n', ns], { env: { EDITOR: editor } });
    assert.equal(noop.code, 0);
    assert.equal(noop.stderr, 'Edit cancelled, no changes made.\n');
  });
});
