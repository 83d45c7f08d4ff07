/**
 * The agent's decisions as pure functions: which action a VMI and its
 * runtime call for, and what status patch an update becomes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { decideAction, graceSecondsOf, lostMachine } from '../../src/agent/actions.js';
import type { Runtime } from '../../src/agent/actions.js';
import { vmiLayout } from '../../src/agent/layout.js';
import { agentFinalizer, statusPatch } from '../../src/agent/vmi-status.js';

function vmi(status: Record<string, unknown>, metadata: Partial<KObject['metadata']> = {}, spec: Record<string, unknown> = {}): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'v', namespace: 'default', uid: 'u1', resourceVersion: '7', ...metadata },
    spec,
    status,
  };
}

const leftover: Runtime = { kind: 'leftover', key: 'default/v', uid: 'u1', layout: vmiLayout('/tmp/x', 'u1'), exit: { phase: 'Succeeded', message: 'the guest powered off' } };

test('a Scheduled VMI without a runtime is started', () => {
  assert.equal(decideAction(vmi({ phase: 'Scheduled', nodeName: 'n' }), undefined).kind, 'start');
});

test('a VMI still Pending or Scheduling waits for the scheduler', () => {
  assert.equal(decideAction(vmi({ phase: 'Pending' }), undefined).kind, 'none');
  assert.equal(decideAction(vmi({ phase: 'Scheduling' }), undefined).kind, 'none');
});

test('a Running VMI whose QEMU is gone is failed by a cleanup', () => {
  const action = decideAction(vmi({ phase: 'Running' }), undefined);
  assert.deepEqual(action, { kind: 'cleanup', vmi: vmi({ phase: 'Running' }), uid: 'u1', exit: lostMachine });
});

test('a final or deleted VMI holding the agent finalizer is cleaned; without it nothing happens', () => {
  assert.equal(decideAction(vmi({ phase: 'Failed' }, { finalizers: [agentFinalizer] }), undefined).kind, 'cleanup');
  assert.equal(decideAction(vmi({ phase: 'Running' }, { deletionTimestamp: '2025-01-01T00:00:00Z', finalizers: [agentFinalizer] }), undefined).kind, 'cleanup');
  assert.equal(decideAction(vmi({ phase: 'Failed' }), undefined).kind, 'none');
  assert.equal(decideAction(undefined, undefined).kind, 'none');
});

test('an ended QEMU found after a restart reports its outcome, unless the VMI never ran (then it starts again)', () => {
  const running = decideAction(vmi({ phase: 'Running' }), leftover);
  assert.equal(running.kind, 'cleanup');
  assert.equal(running.kind === 'cleanup' ? running.exit?.phase : undefined, 'Succeeded');
  const scheduled = decideAction(vmi({ phase: 'Scheduled' }), leftover);
  assert.equal(scheduled.kind === 'cleanup' ? scheduled.exit : 'not a cleanup', undefined);
});

test('grace: the spec, a shorter delete grace, or KubeVirt\'s 30 s default', () => {
  assert.equal(graceSecondsOf(vmi({}, {}, { terminationGracePeriodSeconds: 5 })), 5);
  assert.equal(graceSecondsOf(vmi({}, { deletionGracePeriodSeconds: 2 }, { terminationGracePeriodSeconds: 5 })), 2);
  assert.equal(graceSecondsOf(vmi({}, { deletionGracePeriodSeconds: 0 }, {})), 30);
});

test('statusPatch pins the resourceVersion, records phase transitions and keeps transition times of unchanged conditions', () => {
  const now = new Date('2025-03-01T10:00:00.500Z');
  const before = vmi({
    phase: 'Scheduled',
    conditions: [{ type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: '2025-01-01T00:00:00Z' }],
    phaseTransitionTimestamps: [{ phase: 'Scheduled', phaseTransitionTimestamp: '2025-01-01T00:00:00Z' }],
  });
  const patch = statusPatch(before, { phase: 'Running', set: [{ type: 'Ready', status: 'True' }, { type: 'Paused', status: 'True', reason: 'PausedByUser' }] }, now);
  assert.deepEqual(patch, {
    metadata: { resourceVersion: '7' },
    status: {
      phase: 'Running',
      phaseTransitionTimestamps: [
        { phase: 'Scheduled', phaseTransitionTimestamp: '2025-01-01T00:00:00Z' },
        { phase: 'Running', phaseTransitionTimestamp: '2025-03-01T10:00:00Z' },
      ],
      conditions: [
        { type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: '2025-01-01T00:00:00Z' },
        { type: 'Paused', status: 'True', reason: 'PausedByUser', lastProbeTime: null, lastTransitionTime: '2025-03-01T10:00:00Z' },
      ],
    },
  });
});

test('statusPatch is undefined when the status already says it', () => {
  const same = vmi({ phase: 'Running', nodeName: 'n', conditions: [{ type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: '2025-01-01T00:00:00Z' }] });
  assert.equal(statusPatch(same, { phase: 'Running', set: [{ type: 'Ready', status: 'True' }], remove: ['Paused'], fields: { nodeName: 'n' } }), undefined);
});
