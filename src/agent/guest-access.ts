/**
 * What the API server's subresources do to a running guest, on its
 * machine: pause, unpause, soft reboot and reset through QMP, freeze and
 * unfreeze through the guest agent, and the VNC stream. Refusals carry
 * KubeVirt's messages.
 */
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { ApiError } from '../api/errors.js';
import { assertNever } from './actions.js';
import type { GuestAction, GuestActionParameters } from './handle.js';
import type { Machine } from './machine.js';
import { GuestAgentError, defaultUnfreezeTimeoutMs } from './guest-agent/index.js';

/** Performs `action` on the guest; the Paused condition follows from QMP's events, not from here. */
export async function performGuestAction(machine: Machine, action: GuestAction, parameters: GuestActionParameters = {}): Promise<void> {
  const state = await machine.refreshRunState();
  const paused = state === 'paused' || state === 'prelaunch' || state === 'io-error';
  switch (action) {
    case 'pause':
      if (paused) throw new ApiError('Conflict', 'VMI is already paused');
      await machine.execute('stop');
      return;
    case 'unpause':
      if (!paused) throw new ApiError('Conflict', 'VMI is not paused');
      await machine.execute('cont');
      return;
    case 'softreboot':
      if (paused) throw new ApiError('Conflict', 'VMI is paused');
      // Without a guest agent, Ctrl+Alt+Del is the reboot request a guest understands (the kernel hands it to init).
      await machine.execute('human-monitor-command', { 'command-line': 'sendkey ctrl-alt-delete' });
      return;
    case 'reset':
      await machine.execute('system_reset');
      return;
    case 'freeze':
    case 'unfreeze': {
      if (paused) throw new ApiError('Conflict', `VMI is paused: unpause it before ${action === 'freeze' ? 'freezing' : 'unfreezing'} its filesystems`);
      if (!machine.guestAgent.state.connected) {
        throw new ApiError('Conflict', 'the guest agent is not connected (the VMI has no AgentConnected condition): freezing needs qemu-ga running in the guest on org.qemu.guest_agent.0');
      }
      try {
        if (action === 'unfreeze') await machine.guestAgent.thaw();
        else await machine.guestAgent.freeze({ unfreezeTimeoutMs: (parameters.unfreezeTimeoutSeconds ?? defaultUnfreezeTimeoutMs / 1000) * 1000 });
      } catch (err) {
        if (err instanceof GuestAgentError) throw new ApiError('Conflict', `the guest agent could not ${action} the guest filesystems: ${err.message}`, { cause: err });
        throw err;
      }
      return;
    }
    default:
      assertNever(action);
  }
}

/** A connection to the guest's VNC server. */
export async function openVnc(machine: Machine): Promise<Duplex> {
  const socket = connect(machine.layout.vncSocket);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve();
      });
      socket.once('error', reject);
    });
  } catch (err) {
    socket.destroy();
    // KubeVirt's answer for a VMI without graphics (autoattachGraphicsDevice: false).
    throw new ApiError('BadRequest', 'No graphics devices are present.', { cause: err });
  }
  return socket;
}
