import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api/errors.js';
import { createLogger, silentLogger } from '../log/logger.js';
import { eventually } from './gc/test-support.js';
import { WorkQueue } from './queue.js';
import type { ReconcileResult, Reconciler } from './queue.js';

/** A reconciler whose runs the test sees and can hold open. */
class Recorder {
  readonly calls: string[] = [];
  readonly inFlight = new Map<string, number>();
  maxInFlightPerKey = 0;
  maxInFlight = 0;
  private gate: Promise<void> = Promise.resolve();
  private openGate: () => void = () => undefined;
  constructor(private readonly outcome: (key: string, run: number) => ReconcileResult | Error = () => ({})) {}

  hold(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }

  release(): void {
    this.openGate();
  }

  count(key: string): number {
    return this.calls.filter((k) => k === key).length;
  }

  readonly reconcile: Reconciler = async (key) => {
    this.calls.push(key);
    const run = this.count(key);
    this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
    this.maxInFlightPerKey = Math.max(this.maxInFlightPerKey, this.inFlight.get(key) ?? 0);
    this.maxInFlight = Math.max(this.maxInFlight, [...this.inFlight.values()].reduce((a, b) => a + b, 0));
    try {
      await this.gate;
      const outcome = this.outcome(key, run);
      if (outcome instanceof Error) throw outcome;
      return outcome;
    } finally {
      this.inFlight.set(key, (this.inFlight.get(key) ?? 1) - 1);
    }
  };
}

function queueFor(recorder: Recorder, concurrency = 2): WorkQueue {
  return new WorkQueue(recorder.reconcile, { logger: silentLogger, concurrency, baseDelayMs: 1, maxDelayMs: 20 });
}

const idle = (queue: WorkQueue): Promise<void> => eventually(() => Promise.resolve(queue.length === 0), 'the queue to drain');

test('keys wait for start, and a key queued several times runs once', async () => {
  const r = new Recorder();
  const queue = queueFor(r);
  queue.add('a');
  queue.add('a');
  queue.add('b');
  queue.add('a');
  assert.deepEqual(r.calls, []);
  queue.start();
  await idle(queue);
  assert.deepEqual([...r.calls].sort(), ['a', 'b']);
  await queue.stop();
});

test('a key added while it runs runs once more afterwards, never twice at once', async () => {
  const r = new Recorder();
  const queue = queueFor(r, 4);
  r.hold();
  queue.start();
  queue.add('a');
  await eventually(() => Promise.resolve(r.count('a') === 1), 'the first run');
  queue.add('a');
  queue.add('a');
  r.release();
  await idle(queue);
  assert.equal(r.count('a'), 2);
  assert.equal(r.maxInFlightPerKey, 1);
  await queue.stop();
});

test('different keys run concurrently up to the limit', async () => {
  const r = new Recorder();
  const queue = queueFor(r, 2);
  r.hold();
  queue.start();
  for (const key of ['a', 'b', 'c']) queue.add(key);
  await eventually(() => Promise.resolve(r.calls.length === 2), 'two runs at once');
  assert.equal(r.maxInFlight, 2);
  r.release();
  await idle(queue);
  assert.deepEqual([...r.calls].sort(), ['a', 'b', 'c']);
  await queue.stop();
});

test('errors and conflicts retry with backoff until the reconcile succeeds', async () => {
  const r = new Recorder((key, run) => {
    if (key === 'err' && run < 3) return new Error('boom');
    if (key === 'conflict' && run < 2) return new ApiError('Conflict', 'the object has been modified');
    return {};
  });
  const queue = queueFor(r);
  queue.start();
  queue.add('err');
  queue.add('conflict');
  await idle(queue);
  assert.equal(r.count('err'), 3);
  assert.equal(r.count('conflict'), 2);
  await queue.stop();
});

test('a failed reconcile\'s records name the object\'s namespace, name and uid (from objectOf), or say the uid is unknown when it is gone', async () => {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'debug', write: (line) => { lines.push(JSON.parse(line) as Record<string, unknown>); } });
  const held = { kind: 'VirtualMachine', metadata: { namespace: 'ns', name: 'held', uid: 'uid-held' } };
  const r = new Recorder((key, run) => (run < 2 ? (key === 'ns/held' ? new Error('boom') : new ApiError('Conflict', 'modified')) : {}));
  const queue = new WorkQueue(r.reconcile, { logger, baseDelayMs: 1, maxDelayMs: 20, objectOf: (key) => (key === 'ns/held' ? held : undefined) });
  queue.start();
  queue.add('ns/held');
  queue.add('claim:ns/gone');
  queue.add('cluster-wide');
  await idle(queue);
  await queue.stop();
  const about = (key: string): Record<string, unknown> | undefined => lines.find((l) => l.key === key);
  assert.deepEqual(pick(about('ns/held')), { msg: 'reconcile failed, retrying with backoff', kind: 'VirtualMachine', namespace: 'ns', name: 'held', uid: 'uid-held' });
  assert.equal((about('ns/held')?.err as { message?: string } | undefined)?.message, 'boom');
  assert.deepEqual(pick(about('claim:ns/gone')), { msg: 'reconcile conflicted, requeueing', namespace: 'ns', name: 'gone', uid: null });
  assert.deepEqual(pick(about('cluster-wide')), { msg: 'reconcile conflicted, requeueing', name: 'cluster-wide', uid: null });
});

function pick(line: Record<string, unknown> | undefined): Record<string, unknown> {
  const { msg, kind, namespace, name, uid } = line ?? {};
  return Object.fromEntries(Object.entries({ msg, kind, namespace, name, uid }).filter(([, v]) => v !== undefined));
}

test('requeue and requeueAfter run the key again', async () => {
  const r = new Recorder((key, run) => {
    if (run >= 3) return {};
    return key === 'later' ? { requeueAfter: 2 } : { requeue: true };
  });
  const queue = queueFor(r);
  queue.start();
  queue.add('later');
  queue.add('backoff');
  await idle(queue);
  assert.equal(r.count('later'), 3);
  assert.equal(r.count('backoff'), 3);
  await queue.stop();
});

test('stop waits for running reconciles and drops the rest', async () => {
  const r = new Recorder(() => ({ requeueAfter: 1 }));
  const queue = queueFor(r, 1);
  r.hold();
  queue.start();
  queue.add('a');
  queue.add('b');
  queue.addAfter('c', 1);
  await eventually(() => Promise.resolve(r.calls.length === 1), 'the first run');
  let stopped = false;
  const stopping = queue.stop().then(() => (stopped = true));
  await Promise.resolve();
  assert.equal(stopped, false, 'stop waits for the running reconcile');
  r.release();
  await stopping;
  queue.add('d');
  assert.deepEqual(r.calls, ['a']);
  assert.equal(queue.length, 0);
});
