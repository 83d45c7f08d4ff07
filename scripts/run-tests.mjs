#!/usr/bin/env node
// Runs every compiled test file (dist/**/*.test.js) with node's test runner.
// Usage: node scripts/run-tests.mjs [substring-filter ...]
import { readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = walk('dist', []).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
if (files.length === 0) {
  console.error('no test files found under dist/: run `npm run build` first');
  process.exit(1);
}
// The test guest: brought up to date once here, so that the ~40 test files
// using it skip the build script's check of the Debian package versions.
const guestDir = resolve(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'vireo', 'guest');
const guest = spawnSync('bash', ['scripts/build-guest', '--out', guestDir], { stdio: 'inherit' });
const env = guest.status === 0 ? { ...process.env, VIREO_GUEST_CHECKED: guestDir } : process.env;
const result = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-timeout=600000', '--test-reporter=spec', ...files],
  { stdio: 'inherit', env },
);
process.exit(result.status ?? 1);
