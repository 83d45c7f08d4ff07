/**
 * The guest agent's share of a running VMI's status: AgentConnected,
 * guestOSInfo and fsFreezeStatus from the monitor's state, as merge
 * patches against the stored VMI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../api/object.js';
import type { GuestAgentState } from './guest-agent/index.js';
import type { VmiRecord } from './layout.js';
import { guestOsInfoStatus, runningUpdate } from './vmi-reports.js';
import { statusPatch } from './vmi-status.js';

const record: VmiRecord = { namespace: 'default', name: 'g', uid: 'u1', accel: 'tcg', accelReason: 'no KVM', startedAt: '2026-01-01T00:00:00Z' };

function vmi(status: Record<string, unknown>): KObject {
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'g', namespace: 'default', uid: 'u1', resourceVersion: '7' }, spec: { domain: {} }, status };
}

function update(state: GuestAgentState, status: Record<string, unknown> = { phase: 'Running' }): Record<string, unknown> | undefined {
  const current = vmi(status);
  return statusPatch(current, runningUpdate(current, { runState: 'running', record, guestAgent: { state } }, 'node-1'), new Date('2026-01-02T00:00:00Z'));
}

const osInfo = { 'kernel-release': '6.1.0-56-amd64', 'kernel-version': '#1 SMP', machine: 'x86_64', id: 'vireo-tiny', name: 'Vireo tiny', 'pretty-name': 'Vireo tiny test guest', 'version-id': '1' };

test('guest-get-osinfo becomes KubeVirt\'s guestOSInfo, leaving out what the guest does not report', () => {
  assert.deepEqual(guestOsInfoStatus(osInfo), { id: 'vireo-tiny', kernelRelease: '6.1.0-56-amd64', kernelVersion: '#1 SMP', machine: 'x86_64', name: 'Vireo tiny', prettyName: 'Vireo tiny test guest', versionId: '1' });
  assert.deepEqual(guestOsInfoStatus({ machine: 'x86_64', version: '' }), { machine: 'x86_64' });
});

test('a connected agent sets AgentConnected and guestOSInfo; a frozen guest says fsFreezeStatus frozen', () => {
  const status = update({ connected: true, osInfo, frozen: true })?.status as Record<string, unknown>;
  const conditions = status.conditions as Record<string, unknown>[];
  assert.deepEqual(conditions.find((c) => c.type === 'AgentConnected'), { type: 'AgentConnected', status: 'True', lastProbeTime: null, lastTransitionTime: '2026-01-02T00:00:00Z' });
  assert.equal((status.guestOSInfo as Record<string, unknown>).id, 'vireo-tiny');
  assert.equal(status.fsFreezeStatus, 'frozen');
});

test('an agent that stops answering removes AgentConnected and clears fsFreezeStatus', () => {
  const before = { phase: 'Running', fsFreezeStatus: 'frozen', conditions: [{ type: 'AgentConnected', status: 'True', lastProbeTime: null, lastTransitionTime: '2026-01-01T00:00:00Z' }] };
  const status = update({ connected: false, frozen: false }, before)?.status as Record<string, unknown>;
  assert.ok(!(status.conditions as Record<string, unknown>[]).some((c) => c.type === 'AgentConnected'));
  assert.equal(status.fsFreezeStatus, null, 'removed by the merge patch');
  assert.deepEqual(status.guestOSInfo, {});
});
