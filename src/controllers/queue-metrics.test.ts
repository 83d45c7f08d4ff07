import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { silentLogger } from '../log/logger.js';
import { eventually } from '../testing/wait.js';
import { WorkQueue } from './queue.js';
import { WorkQueueMetrics, queueMetricsScope } from './queue-metrics.js';

async function value(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as { labels: Record<string, string | number>; value: number; metricName?: string }[];
  return values.filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)).reduce((sum, v) => sum + v.value, 0);
}

test('a queue made in the scope reports adds, depth, retries and reconcile outcomes under its controller\'s name', async () => {
  const registry = new Registry();
  const metrics = new WorkQueueMetrics(registry);
  let runs = 0;
  const queue = queueMetricsScope.run({ metrics, name: 'demo-controller' }, () => new WorkQueue(() => {
    runs++;
    if (runs === 1) return Promise.reject(new Error('first run fails'));
    return Promise.resolve(runs === 2 ? { requeueAfter: 60_000 } : {});
  }, { logger: silentLogger, baseDelayMs: 1 }));
  queue.add('a');
  queue.add('a');
  assert.equal(await value(registry, 'workqueue_adds_total', { name: 'demo-controller' }), 1, 'a key already queued is not added twice');
  assert.equal(await value(registry, 'workqueue_depth', { name: 'demo-controller' }), 1);
  queue.start();
  await eventually(() => runs >= 2);
  await eventually(async () => (await value(registry, 'controller_runtime_reconcile_total', { controller: 'demo-controller', result: 'requeue_after' })) === 1);
  assert.equal(await value(registry, 'controller_runtime_reconcile_total', { controller: 'demo-controller', result: 'error' }), 1);
  assert.equal(await value(registry, 'controller_runtime_reconcile_errors_total', { controller: 'demo-controller' }), 1);
  assert.equal(await value(registry, 'workqueue_retries_total', { name: 'demo-controller' }), 1);
  assert.equal(await value(registry, 'workqueue_depth', { name: 'demo-controller' }), 0);
  assert.equal(await value(registry, 'workqueue_work_duration_seconds', { name: 'demo-controller' }) > 0, true);
  await queue.stop();
});

test('a queue made outside any scope (the node agent\'s) reports nothing', async () => {
  const registry = new Registry();
  new WorkQueueMetrics(registry);
  const queue = new WorkQueue(() => Promise.resolve({}), { logger: silentLogger });
  queue.add('a');
  assert.equal(await value(registry, 'workqueue_adds_total', {}), 0);
  await queue.stop();
});
