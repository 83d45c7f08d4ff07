/**
 * Every upstream example manifest (KubeVirt's `examples/`, CDI's
 * `manifests/example/`, read from `../shared` beside the repository) applies
 * with `kubectl apply -f <file>`, creates exactly the objects it declares,
 * and applies again as `unchanged`.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { kubectlSuites, sharedExamples } from './support.js';
import type { Kubectl } from './support.js';

/** Kinds Vireo does not serve yet, with the reason a file that uses them is skipped. */
const unserved: Record<string, string> = {
  ResourceClaimTemplate: 'ResourceClaimTemplate (resource.k8s.io, dynamic resource allocation) is not served yet',
};

/**
 * Virtual, create-only kinds (CDI's UploadTokenRequest): `kubectl create`,
 * not apply (nothing is stored for apply to read back), and the claim the
 * request names must exist first.
 */
const createOnly = new Set(['UploadTokenRequest']);

/** Objects the server makes at start, as CDI's operator does: applying them configures, not creates. */
const seeded = new Set(['CDIConfig/config']);

interface Doc {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

interface Example {
  file: string;
  path: string;
  docs: Doc[];
  /** Where it goes: the manifest's own namespace, or a fresh one passed with -n. */
  freshNamespace?: string;
}

function readExample(folder: string, file: string): Example {
  const path = join(folder, file);
  const docs: Doc[] = [];
  for (const doc of parseAllDocuments(readFileSync(path, 'utf8'))) {
    const value = doc.toJS() as { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string } } | null;
    if (value === null || value === undefined) continue;
    const d: Doc = { apiVersion: value.apiVersion ?? '', kind: value.kind ?? '', name: value.metadata?.name ?? '' };
    if (value.metadata?.namespace !== undefined) d.namespace = value.metadata.namespace;
    docs.push(d);
  }
  const example: Example = { file, path, docs };
  if (docs.every((d) => d.namespace === undefined)) example.freshNamespace = `ex-${file.replace(/\.yaml$/, '').replace(/[^a-z0-9-]/g, '-')}`.slice(0, 63);
  return example;
}

/** What `kubectl apply` prints for a document: `<kind>.<group>/<name> <verb>`. */
function applyLine(d: Doc, verb: string): string {
  const group = d.apiVersion.includes('/') ? `.${d.apiVersion.split('/')[0] ?? ''}` : '';
  return `${d.kind.toLowerCase()}${group}/${d.name} ${verb}`;
}

/**
 * What an example needs to exist first, as on KubeVirt: a migration is admitted only for an existing VMI
 * (one that does not run yet waits in Pending), so its `spec.vmiName` gets a VMI without networks.
 */
async function applyPrerequisites(k: Kubectl, path: string, freshNamespace: string | undefined): Promise<void> {
  for (const doc of parseAllDocuments(readFileSync(path, 'utf8')).map((d) => d.toJS() as { kind?: string; metadata?: { namespace?: string }; spec?: { vmiName?: string } })) {
    const vmi = doc.spec?.vmiName;
    if (doc.kind !== 'VirtualMachineInstanceMigration' || vmi === undefined) continue;
    const namespace = doc.metadata?.namespace ?? freshNamespace ?? 'default';
    await k.apply(`apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata:\n  name: ${vmi}\n  namespace: ${namespace}\nspec:\n  domain:\n    devices:\n      autoattachPodInterface: false\n      disks: [{ name: root, disk: { bus: virtio } }]\n    memory: { guest: 64Mi }\n  volumes: [{ name: root, containerDisk: { image: localhost/vireo/blank:latest } }]\n`);
  }
}

const folders = ['kubevirt-examples', 'cdi-examples'].map((name) => ({ name, path: sharedExamples(name) }));

kubectlSuites('upstream examples apply', (k) => {
  const examples = folders.flatMap((f) =>
    existsSync(f.path) ? readdirSync(f.path).filter((n) => n.endsWith('.yaml')).sort().map((n) => ({ folder: f.name, example: readExample(f.path, n) })) : [],
  );

  before(async () => {
    // Namespaces the manifests name (e.g. CDI's `cdi`) and one fresh namespace per manifest without one, in one apply.
    const named = new Set(examples.flatMap((e) => e.example.docs.map((d) => d.namespace)).filter((n): n is string => n !== undefined && n !== 'default'));
    const fresh = examples.map((e) => e.example.freshNamespace).filter((n): n is string => n !== undefined);
    const all = [...named, ...fresh];
    const out = await k.apply(all.map((n) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${n}\n`).join('---\n'));
    assert.equal(out.trim().split('\n').length, all.length, out);
  });

  for (const folder of folders) {
    if (!existsSync(folder.path)) {
      test(`${folder.name}: skipped because ${folder.path} does not exist on this machine`, { skip: true });
      continue;
    }
    describe(folder.name, { concurrency: 8 }, () => {
      for (const { example } of examples.filter((e) => e.folder === folder.name)) {
        const missing = example.docs.map((d) => unserved[d.kind]).find((r) => r !== undefined);
        if (missing !== undefined) {
          test(`${example.file}: skipped because ${missing}`, { skip: true });
          continue;
        }
        if (example.docs.some((d) => createOnly.has(d.kind))) {
          test(example.file, async () => {
            for (const doc of parseAllDocuments(readFileSync(example.path, 'utf8')).map((d) => d.toJS() as { metadata?: { namespace?: string }; spec?: { pvcName?: string } })) {
              const claim = doc.spec?.pvcName;
              if (claim === undefined) continue;
              await k.apply(`apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata:\n  name: ${claim}\n  namespace: ${doc.metadata?.namespace ?? 'default'}\nspec:\n  source:\n    upload: {}\n  storage:\n    resources:\n      requests:\n        storage: 1Mi\n`);
            }
            const created = await k.run(['create', '-f', example.path]);
            assert.equal(created.code, 0, `create -f ${example.file} failed:\n${created.stderr}`);
            assert.equal(created.stdout, example.docs.map((d) => `${applyLine(d, 'created')}\n`).join(''));
          });
          continue;
        }
        test(example.file, async () => {
          const ns = example.freshNamespace === undefined ? [] : ['-n', example.freshNamespace];
          await applyPrerequisites(k, example.path, example.freshNamespace);
          const created = await k.run(['apply', '-f', example.path, ...ns]);
          assert.equal(created.code, 0, `apply -f ${example.file} failed:\n${created.stderr}`);
          assert.equal(created.stdout, example.docs.map((d) => `${applyLine(d, seeded.has(`${d.kind}/${d.name}`) ? 'configured' : 'created')}\n`).join(''));
          const again = await k.ok(['apply', '-f', example.path, ...ns]);
          assert.equal(again, example.docs.map((d) => `${applyLine(d, 'unchanged')}\n`).join(''));
        });
      }
    });
  }
});
