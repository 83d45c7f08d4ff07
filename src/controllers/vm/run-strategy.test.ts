import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/object.js';
import { decide, runStrategyOf, trimRequests } from './run-strategy.js';
import type { DecideInput } from './run-strategy.js';

const vmi = (phase: string, deleting = false): KObject => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'vm', uid: 'u1', ...(deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
  status: { phase },
});
const input = (over: Partial<DecideInput>): DecideInput => ({ strategy: 'Always', vmi: undefined, requests: [], lastRunStrategy: undefined, backoffLeftMs: 0, ...over });

test('each run strategy decides as KubeVirt does', () => {
  const cases: [Partial<DecideInput>, string][] = [
    [{ strategy: 'Always' }, 'start'],
    [{ strategy: 'Always', backoffLeftMs: 500 }, 'wait'],
    [{ strategy: 'Always', vmi: vmi('Running') }, 'none'],
    [{ strategy: 'Always', vmi: vmi('Succeeded') }, 'stop'],
    [{ strategy: 'Always', vmi: vmi('Failed', true) }, 'none'],
    [{ strategy: 'Always', vmi: vmi('Running'), requests: [{ action: 'Stop', uid: 'u1' }] }, 'stop'],
    [{ strategy: 'Always', vmi: vmi('Running'), requests: [{ action: 'Stop', uid: 'other' }] }, 'none'],
    [{ strategy: 'RerunOnFailure' }, 'start'],
    [{ strategy: 'RerunOnFailure', lastRunStrategy: 'RerunOnFailure' }, 'none'],
    [{ strategy: 'RerunOnFailure', lastRunStrategy: 'RerunOnFailure', requests: [{ action: 'Start' }] }, 'start'],
    [{ strategy: 'RerunOnFailure', vmi: vmi('Succeeded') }, 'stop'],
    [{ strategy: 'Manual' }, 'none'],
    [{ strategy: 'Manual', requests: [{ action: 'Start' }] }, 'start'],
    [{ strategy: 'Manual', vmi: vmi('Failed') }, 'none'],
    [{ strategy: 'Halted', vmi: vmi('Running') }, 'stop'],
    [{ strategy: 'Halted', requests: [{ action: 'Start' }] }, 'runAlways'],
    [{ strategy: 'Once' }, 'start'],
    [{ strategy: 'Once', vmi: vmi('Failed') }, 'none'],
  ];
  for (const [over, want] of cases) assert.equal(decide(input(over)).action, want, JSON.stringify(over));
  assert.deepEqual(decide(input({ strategy: 'RerunOnFailure', vmi: vmi('Failed') })), { action: 'stop', rerun: true });
  assert.deepEqual(decide(input({ strategy: 'Manual', requests: [{ action: 'Start', data: { paused: 'true' } }] })), { action: 'start', paused: true });
});

test('the deprecated running field maps to Always or Halted; both fields together are an error', () => {
  const vm = (spec: Record<string, unknown>): KObject => ({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: {}, spec });
  assert.deepEqual(runStrategyOf(vm({ running: true })), { strategy: 'Always' });
  assert.deepEqual(runStrategyOf(vm({ running: false })), { strategy: 'Halted' });
  assert.deepEqual(runStrategyOf(vm({ runStrategy: 'Once' })), { strategy: 'Once' });
  assert.ok('error' in runStrategyOf(vm({ running: true, runStrategy: 'Always' })));
  assert.ok('error' in runStrategyOf(vm({ runStrategy: 'Sometimes' })));
});

test('a request is dropped once acted on, and not before', () => {
  const stop = { action: 'Stop', uid: 'u1' };
  const start = { action: 'Start' };
  assert.deepEqual(trimRequests([stop, start], vmi('Running')), [stop, start]);
  assert.deepEqual(trimRequests([stop, start], undefined), [start]);
  assert.deepEqual(trimRequests([start], undefined), [start]);
  assert.deepEqual(trimRequests([start], vmi('Failed')), [start]);
  assert.deepEqual(trimRequests([start], vmi('Scheduled')), []);
});
