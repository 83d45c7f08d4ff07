/**
 * A scrape does not wait on QEMU when Prometheus keeps its rhythm: the
 * agent asks the guests ahead of the next scrape, so that a scrape finds
 * current answers even from a QEMU that is frozen (SIGSTOP) at that moment.
 * Off the rhythm, a scrape asks and waits a bounded time, then serves the
 * guest's previous answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshWaitMs, parseSamples } from '../../src/agent/metrics/index.js';
import { eventually } from '../../src/testing/wait.js';
import { createBound, importBlankImage, phase, qemuPidsUnder, startAgentFixture, vmiManifest, waitVmi } from './support.js';

const intervalMs = 3_000;

function storageOps(text: string): number | undefined {
  return parseSamples(text).find((s) => s.name === 'kubevirt_vmi_storage_iops_read_total' && s.labels.drive === 'root')?.value;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('scrapes at a steady interval find QEMU\'s answers asked ahead; a scrape off the rhythm waits at most a bound and serves the previous answers', async (t) => {
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  await importBlankImage(fixture.images);
  await createBound(fixture, vmiManifest('rhythm'));
  await waitVmi(fixture, 'rhythm', (v) => phase(v) === 'Running', 'the VMI to run');
  const [pid] = qemuPidsUnder(fixture.dataDir);
  assert.ok(pid !== undefined, 'the VMI\'s QEMU is running');
  await eventually(async () => storageOps(await fixture.agent.metrics()) !== undefined || undefined, { what: 'QEMU\'s block statistics in a scrape', timeoutMs: 30_000 });

  // Two scrapes set the rhythm; the agent asks QEMU ahead of the third.
  await fixture.agent.metrics();
  await sleep(intervalMs);
  const second = Date.now();
  await fixture.agent.metrics();
  await sleep(second + intervalMs - 150 - Date.now());
  process.kill(pid, 'SIGSTOP');
  t.after(() => { try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ } });
  await sleep(second + intervalMs - Date.now());
  const onRhythm = await fixture.agent.metrics();
  const report = fixture.agent.lastScrapeReport();
  assert.deepEqual({ guests: report?.guests, current: report?.current, asked: report?.asked }, { guests: 1, current: 1, asked: 0 }, 'the answers were asked ahead: nothing was asked at the scrape');
  assert.equal(report?.waitedMs !== undefined && report.waitedMs < freshWaitMs, true, `the scrape did not wait for the frozen QEMU (${report?.waitedMs ?? '?'} ms)`);
  assert.ok(report !== undefined && report.oldestAnswerMs < intervalMs / 2, `the answers served are current (${report?.oldestAnswerMs ?? '?'} ms old)`);
  assert.notEqual(storageOps(onRhythm), undefined, 'QEMU\'s families are in the scrape');

  // Right after, off the rhythm: the guest is asked, the frozen QEMU does not answer, and its previous answers are served.
  const offRhythm = await fixture.agent.metrics();
  const late = fixture.agent.lastScrapeReport();
  assert.deepEqual({ current: late?.current, asked: late?.asked, late: late?.late }, { current: 0, asked: 1, late: 1 });
  assert.ok(late !== undefined && late.waitedMs >= freshWaitMs - 1 && late.waitedMs < 1_000, `the scrape waited about ${freshWaitMs} ms (${late?.waitedMs ?? '?'} ms)`);
  assert.equal(storageOps(offRhythm), storageOps(onRhythm), 'the previous answers are served');

  process.kill(pid, 'SIGCONT');
  await eventually(async () => {
    await fixture.agent.metrics();
    return fixture.agent.lastScrapeReport()?.late === 0 || undefined;
  }, { what: 'the thawed QEMU to answer a scrape in time', timeoutMs: 15_000, intervalMs: 300 });
});
