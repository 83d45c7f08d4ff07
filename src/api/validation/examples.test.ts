import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { KObject } from '../object.js';
import { isPlainObject } from '../object.js';
import { hasKindValidation, validateKind } from './registry.js';

/** The repository root: the nearest directory above this file with a package.json (works from src and from any dist). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('no package.json above the test file');
    dir = parent;
  }
  return dir;
}

interface Manifest {
  file: string;
  obj: KObject;
}

function manifests(folder: string): Manifest[] {
  const dir = join(repoRoot(), '..', 'shared', folder);
  const out: Manifest[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      const value: unknown = doc.toJS();
      if (!isPlainObject(value) || typeof value['apiVersion'] !== 'string' || typeof value['kind'] !== 'string' || !isPlainObject(value['metadata'])) continue;
      out.push({ file, obj: value as KObject });
    }
  }
  return out;
}

function groupOf(apiVersion: string): string {
  return apiVersion.includes('/') ? (apiVersion.split('/')[0] ?? '') : '';
}

for (const [folder, minimum] of [['kubevirt-examples', 27], ['cdi-examples', 14]] as const) {
  const present = existsSync(join(repoRoot(), '..', 'shared', folder));
  test(
    present ? `every validated manifest in shared/${folder} is admitted` : `shared/${folder} manifests (skipped: ../shared/${folder} beside the repository is absent)`,
    { skip: !present },
    () => {
      const checked = manifests(folder).filter((m) => hasKindValidation(groupOf(m.obj.apiVersion), m.obj.kind));
      // Guards against a parser or lookup change that silently checks nothing.
      assert.ok(checked.length >= minimum, `only ${checked.length} manifests had kind validation`);
      for (const { file, obj } of checked) {
        assert.deepEqual(validateKind(groupOf(obj.apiVersion), obj.kind, obj), [], `${file}: ${obj.kind} ${obj.metadata.name ?? ''}`);
      }
    },
  );
}
