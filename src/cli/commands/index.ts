/** The `vireo` commands that act on virtual machines, as `src/cli/main.ts` dispatches them. */
import { runGuestAction, runVmAction } from './actions.js';
import { runConsole } from './console.js';
import { exposeUsage, runExpose } from './expose.js';
import { runLogs } from './logs.js';
import { runMigrate, runMigrateCancel } from './migrate.js';
import { runPortForward } from './port-forward.js';
import { runSsh } from './ssh.js';
import { runTop, topUsage } from './top.js';
import { runVnc } from './vnc.js';
import { runAddVolume, runRemoveVolume } from './volumes.js';

export const vmCommandsUsage = `
Virtual machine commands (each takes -n/--namespace NS and --kubeconfig FILE;
the kubeconfig is --kubeconfig, else $KUBECONFIG, else ~/.vireo/kubeconfig):
  start NAME [--paused] [--dry-run]
                         Start a VirtualMachine (--paused: start it with its vCPUs paused).
  stop NAME [--force --grace-period S] [--dry-run]
                         Stop a VirtualMachine; --force --grace-period 0 stops it at once.
  restart NAME [--force --grace-period 0] [--dry-run]
                         Restart a VirtualMachine: a new VMI replaces the running one.
  pause vm|vmi NAME [--dry-run]
                         Pause a running guest (its vCPUs stop). NAME alone means vmi NAME.
  unpause vm|vmi NAME [--dry-run]
                         Resume a paused guest.
  soft-reboot vm|vmi NAME
                         Reboot the guest through ACPI (or its guest agent).
  reset vm|vmi NAME      Hard-reset the guest, like pressing its reset button.
  console NAME [--linger S]
                         Attach to the guest's serial console; Ctrl+] leaves. With piped
                         input: send it, then print output until the guest has been
                         quiet for S seconds (default 1).
  vnc NAME [--address A] [--port P]
                         Serve the guest's VNC display on A:P (default 127.0.0.1, a free
                         port) for a local VNC viewer, until Ctrl+C.
  logs NAME [-f]         Print the guest's kept serial output; -f keeps printing it live
                         (through the console stream) until the guest stops.
  port-forward [--address A] [--stdio] vm|vmi/NAME[.NS] [LOCAL:]REMOTE...
                         Forward local TCP ports (on A, default 127.0.0.1; LOCAL 0 picks a
                         free one) to ports of the guest until Ctrl+C; --stdio bridges one
                         port to stdin/stdout (an ssh ProxyCommand).
  ssh [-i KEY] [-l USER] [-p PORT] [-c COMMAND] [USER@]vm|vmi/NAME[.NS]
                         The local ssh client to the guest's SSH server through
                         port-forward; host keys kept in ~/.ssh/kube_known_hosts.
  addvolume VMI --volume-name=NAME [--persist] [--serial=S] [--cache=C] [--dry-run]
                         Hotplug the DataVolume or PersistentVolumeClaim NAME into the running
                         guest as a SCSI disk; --persist also adds it to the VM's spec.
  removevolume VMI --volume-name=NAME [--persist] [--dry-run]
                         Unplug a hotplugged volume; --persist also removes it from the VM.
  migrate NAME [--dry-run]
                         Live-migrate the running VMI NAME to another node (creates a
                         VirtualMachineInstanceMigration; follow it with kubectl get vmim).
  migrate-cancel NAME    Cancel the migration of NAME before it switches over (deletes it);
                         the guest runs on where it was.
${topUsage}
${exposeUsage}`;

const commands = {
  start: (args: string[]) => runVmAction('start', args),
  stop: (args: string[]) => runVmAction('stop', args),
  restart: (args: string[]) => runVmAction('restart', args),
  pause: (args: string[]) => runGuestAction('pause', args),
  unpause: (args: string[]) => runGuestAction('unpause', args),
  'soft-reboot': (args: string[]) => runGuestAction('soft-reboot', args),
  reset: (args: string[]) => runGuestAction('reset', args),
  console: runConsole,
  vnc: runVnc,
  logs: runLogs,
  top: runTop,
  'port-forward': runPortForward,
  ssh: runSsh,
  addvolume: runAddVolume,
  removevolume: runRemoveVolume,
  expose: runExpose,
  migrate: runMigrate,
  'migrate-cancel': runMigrateCancel,
} satisfies Record<string, (args: string[]) => Promise<void>>;

export type VmCommand = keyof typeof commands;

export function isVmCommand(command: string): command is VmCommand {
  return Object.hasOwn(commands, command);
}

export function runVmCommand(command: VmCommand, args: string[]): Promise<void> {
  return commands[command](args);
}
