import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { KeptFiles } from './kept-files.js';

const openDescriptors = (): number => readdirSync('/proc/self/fd').length;

test('a kept descriptor reads the kernel\'s file afresh each time, and close lets every descriptor go', () => {
  const files = new KeptFiles();
  const before = openDescriptors();
  const runNs = (): number => Number((files.read(`/proc/${process.pid}/schedstat`) ?? '').split(' ')[0]);
  const first = runNs();
  const until = Date.now() + 30;
  while (Date.now() < until) { /* burn CPU */ }
  assert.ok(runNs() > first, 'the second read sees the CPU time spent since the first');
  assert.equal(openDescriptors(), before + 1, 'one descriptor, kept');
  assert.equal(files.read('/proc/self/no-such-file'), undefined);
  files.close();
  assert.equal(openDescriptors(), before);
});

test('a process that is gone reads as undefined through its kept descriptor', async () => {
  const child = spawn('sleep', ['30']);
  const files = new KeptFiles();
  const status = `/proc/${child.pid ?? 0}/status`;
  assert.match(files.read(status) ?? '', /^Name:\s+sleep$/m);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  assert.equal(files.read(status), undefined);
  files.close();
});
