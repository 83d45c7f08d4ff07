/**
 * What the API server's subresources do to a running guest, on its
 * machine: pause, unpause, soft reboot and reset through QMP, and the VNC
 * stream. Refusals carry KubeVirt's messages.
 */
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { ApiError } from '../api/errors.js';
import { assertNever } from './actions.js';
import type { GuestAction } from './handle.js';
import type { Machine } from './machine.js';

/** Performs `action` on the guest; the Paused condition follows from QMP's events, not from here. */
export async function performGuestAction(machine: Machine, action: GuestAction): Promise<void> {
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
