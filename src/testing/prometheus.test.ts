/**
 * The Prometheus harness against the real `prometheus`: it scrapes itself,
 * a rule file loaded evaluates, a bad expression comes back as Prometheus'
 * parse error, and stopping it leaves neither the process nor its files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasBinary } from './binaries.js';
import { startPrometheus } from './prometheus.js';
import { eventually } from './wait.js';

const skip = hasBinary('prometheus') ? false : 'prometheus is not installed (scripts/setup installs it)';

test('Prometheus scrapes itself, evaluates a rule file and stops without a trace', { skip, timeout: 60_000 }, async () => {
  const rulesDir = mkdtempSync(join(tmpdir(), 'vireo-rules-'));
  const ruleFile = join(rulesDir, 'rules.yaml');
  writeFileSync(ruleFile, 'groups:\n  - name: harness\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n');
  const prometheus = await startPrometheus({ scrapeConfigs: [], scrapeItself: true, ruleFiles: [ruleFile] });
  try {
    const targets = await eventually(async () => {
      const answer = await prometheus.api('targets');
      const active = (answer.data as { activeTargets?: { health?: string; labels?: Record<string, string> }[] }).activeTargets ?? [];
      return active.length === 1 && active[0]?.health === 'up' ? active : undefined;
    }, { timeoutMs: 20_000, what: 'the self-scrape target to be up' });
    assert.equal(targets[0]?.labels?.job, 'prometheus');
    const recorded = await eventually(async () => {
      const samples = await prometheus.query('job:up:sum');
      return samples.length > 0 ? samples : undefined;
    }, { timeoutMs: 20_000, what: 'job:up:sum to be recorded' });
    assert.deepEqual(recorded.map((s) => [s.metric.job, s.value]), [['prometheus', 1]]);
    const rules = await prometheus.api('rules');
    const group = (rules.data as { groups: { rules: { health: string; lastError?: string }[] }[] }).groups[0];
    assert.equal(group?.rules[0]?.health, 'ok');
    await assert.rejects(prometheus.query('sum(up'), /bad_data.*parse error/);
  } finally {
    await prometheus.stop();
    rmSync(rulesDir, { recursive: true, force: true });
  }
  assert.equal(existsSync(prometheus.dir), false);
  await assert.rejects(fetch(`${prometheus.url}/-/ready`));
});
