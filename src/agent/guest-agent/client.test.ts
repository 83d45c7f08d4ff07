/**
 * The guest agent client against a real qemu-ga (Debian's, from the test
 * guest's build) running on the host and listening on a unix socket:
 * sync, the commands Vireo reads, refusals, stale bytes in the channel,
 * timeouts, and the monitor's connect/lose cycle. Commands that would act
 * on the host (freezing its filesystems, shutting it down, running
 * programs) are blocked on the command line of this qemu-ga; freezing is
 * tested in a guest (test/storage/guest-agent.test.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureTestGuest } from '../images/index.js';
import { silentLogger } from '../../log/logger.js';
import { eventually } from '../../testing/wait.js';
import { GuestAgentClient } from './client.js';
import { GuestAgentError } from './errors.js';
import { GuestAgentMonitor } from './monitor.js';
import { askGuestStats, enabledCommands } from './stats.js';

const blocked = [
  'guest-fsfreeze-freeze', 'guest-fsfreeze-freeze-list', 'guest-fsfreeze-thaw', 'guest-fstrim',
  'guest-shutdown', 'guest-suspend-disk', 'guest-suspend-ram', 'guest-suspend-hybrid',
  'guest-exec', 'guest-exec-status', 'guest-file-open', 'guest-file-write', 'guest-set-time',
  'guest-set-user-password', 'guest-set-vcpus', 'guest-set-memory-blocks', 'guest-ssh-add-authorized-keys',
  'guest-ssh-remove-authorized-keys',
];

const dir = mkdtempSync(join(tmpdir(), 'vqga-'));
const socket = join(dir, 'qga.sock');
let agent: ChildProcess | undefined;
let binary = '';

/** Starts qemu-ga listening on `socket`; resolves once the socket exists. */
async function startAgent(): Promise<ChildProcess> {
  rmSync(socket, { force: true });
  const child = spawn(binary, ['-m', 'unix-listen', '-p', socket, '-t', dir, '-f', join(dir, 'qemu-ga.pid'), '-l', join(dir, 'qemu-ga.log'), '-b', blocked.join(',')], { stdio: 'ignore' });
  await eventually(() => existsSync(socket), { what: 'qemu-ga to listen', timeoutMs: 10_000, intervalMs: 20 });
  return child;
}

async function stopAgent(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await gone;
}

before(async () => {
  binary = (await ensureTestGuest()).guestAgent;
  agent = await startAgent();
});
after(async () => {
  if (agent !== undefined) await stopAgent(agent);
  rmSync(dir, { recursive: true, force: true });
});

describe('GuestAgentClient against a real qemu-ga', () => {
  it('syncs and reads the agent info, OS info, host name and freeze state', async () => {
    const client = await GuestAgentClient.connect(socket);
    try {
      await client.ping();
      const info = await client.info();
      assert.match(info.version, /^\d+\.\d+/);
      assert.ok(info.supported_commands.some((c) => c.name === 'guest-ping' && c.enabled));
      assert.ok(info.supported_commands.some((c) => c.name === 'guest-fsfreeze-freeze' && !c.enabled), 'the freeze is blocked on this host agent');
      const os = await client.osInfo();
      assert.equal(typeof os['kernel-release'], 'string');
      assert.equal(os.machine, 'x86_64');
      assert.ok((await client.hostName()).length > 0);
      assert.equal(await client.fsFreezeStatus(), 'thawed');
    } finally {
      client.close();
    }
  });

  it('reports a refused command with the agent class and keeps the session', async () => {
    const client = await GuestAgentClient.connect(socket);
    try {
      await assert.rejects(client.fsFreeze(), (err: unknown) => err instanceof GuestAgentError && err.code === 'GuestAgentCommandFailed' && /disabled/i.test(err.message));
      await assert.rejects(client.execute('guest-no-such-command', undefined, (v) => v), (err: unknown) => err instanceof GuestAgentError && err.errorClass === 'CommandNotFound');
      await client.ping();
    } finally {
      client.close();
    }
  });

  it('reads the filesystems for the metrics, and leaves out the load an agent before 10.0 does not have', async () => {
    const client = await GuestAgentClient.connect(socket);
    try {
      const info = await client.info();
      const enabled = enabledCommands(info);
      assert.ok(enabled.has('guest-get-fsinfo'));
      const filesystems = await client.fsInfo();
      for (const fs of filesystems) {
        assert.ok(fs.mountpoint.startsWith('/'), `a mount point: ${fs.mountpoint}`);
        assert.ok((fs['used-bytes'] ?? 0) <= (fs['total-bytes'] ?? Infinity), `${fs.mountpoint}: used within capacity`);
      }
      const stats = await askGuestStats(client, enabled);
      assert.deepEqual(stats.filesystems?.map((fs) => fs.mountpoint), filesystems.map((fs) => fs.mountpoint));
      assert.equal(enabled.has('guest-get-load'), false, `qemu-ga ${info.version} has no guest-get-load`);
      assert.equal(stats.load, undefined);
      // Asked anyway (as if listed), the agent refuses it: the load is left out and the session goes on.
      const asked = await askGuestStats(client, new Set([...enabled, 'guest-get-load']));
      assert.equal(asked.load, undefined);
      assert.ok(asked.filesystems !== undefined);
      await client.ping();
    } finally {
      client.close();
    }
  });

  it('runs commands one at a time when they are issued together', async () => {
    const client = await GuestAgentClient.connect(socket);
    try {
      const [a, b, c] = await Promise.all([client.hostName(), client.fsFreezeStatus(), client.info()]);
      assert.ok(a.length > 0);
      assert.equal(b, 'thawed');
      assert.match(c.version, /^\d/);
    } finally {
      client.close();
    }
  });

  it('drops what an earlier client left unanswered in the channel', async () => {
    // A raw client sends commands and leaves without reading their replies.
    const raw = connect(socket);
    await new Promise((resolve) => raw.once('connect', resolve));
    raw.write('{"execute":"guest-info"}\n{"execute":"guest-sync-delimited","arguments":{"id":7}}\n{"execute":"guest-get-osinfo"}\n{"execute":');
    raw.end();
    const client = await GuestAgentClient.connect(socket);
    try {
      assert.ok((await client.hostName()).length > 0);
      assert.equal(await client.fsFreezeStatus(), 'thawed');
    } finally {
      client.close();
    }
  });

  it('times out on a channel nobody answers, and closes the session', async () => {
    // A socket that accepts and never answers stands for a guest without an agent.
    const silent = join(dir, 'silent.sock');
    const server = createServer(() => undefined).listen(silent);
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const started = Date.now();
      await assert.rejects(GuestAgentClient.connect(silent, { timeoutMs: 300 }), (err: unknown) => err instanceof GuestAgentError && err.code === 'GuestAgentTimeout');
      assert.ok(Date.now() - started < 5_000);
      await assert.rejects(GuestAgentClient.connect(join(dir, 'missing.sock')), (err: unknown) => err instanceof GuestAgentError && err.code === 'GuestAgentConnectFailed');
    } finally {
      server.close();
    }
  });
});

describe('GuestAgentMonitor with an agent whose filesystems never answer', () => {
  it('loses the session once, then stops asking for the stats and stays connected', async () => {
    // A fake channel: a guest whose statvfs hangs (a dead network mount) answers everything but guest-get-fsinfo.
    const stuck = join(dir, 'stuck.sock');
    let fsInfoAsked = 0;
    let sessions = 0;
    const answers: Record<string, unknown> = {
      'guest-info': { version: '7.2.0', supported_commands: [{ name: 'guest-get-fsinfo', enabled: true }, { name: 'guest-ping', enabled: true }] },
      'guest-get-osinfo': { machine: 'x86_64' },
      'guest-get-host-name': { 'host-name': 'stuck' },
      'guest-fsfreeze-status': 'thawed',
      'guest-ping': {},
    };
    const server = createServer((peer) => {
      sessions++;
      let buffer = '';
      peer.on('error', () => undefined);
      peer.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('latin1').replace(/\xff/g, '');
        for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
          const request = JSON.parse(buffer.slice(0, end)) as { execute: string; arguments?: { id?: number } };
          buffer = buffer.slice(end + 1);
          if (request.execute === 'guest-sync-delimited') peer.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`${JSON.stringify({ return: request.arguments?.id })}\n`)]));
          else if (request.execute === 'guest-get-fsinfo') fsInfoAsked++;
          else peer.write(`${JSON.stringify({ return: answers[request.execute] ?? {} })}\n`);
        }
      });
    }).listen(stuck);
    await new Promise((resolve) => server.once('listening', resolve));
    const monitor = new GuestAgentMonitor({ socketPath: stuck, logger: silentLogger, onChange: () => undefined, pollMs: 50, retryMs: 50, statsIntervalMs: 50, commandTimeoutMs: 300 });
    monitor.start();
    try {
      await eventually(() => sessions >= 2 && monitor.state.connected, { what: 'the monitor to reconnect after the stats timed out', timeoutMs: 10_000, intervalMs: 20 });
      // Ten stats intervals later (an absence is watched for a while, not waited on): still connected, not asked again.
      await sleep(500);
      assert.equal(monitor.state.connected, true);
      assert.equal(sessions, 2);
      assert.equal(fsInfoAsked, 1);
      assert.equal(monitor.stats?.filesystems, undefined);
    } finally {
      monitor.stop();
      server.close();
    }
  });
});

describe('GuestAgentMonitor against a real qemu-ga', () => {
  it('is connected while the agent answers, loses it when the agent stops, and reconnects', async () => {
    let changes = 0;
    const monitor = new GuestAgentMonitor({ socketPath: socket, logger: silentLogger, onChange: () => { changes++; }, pollMs: 100, retryMs: 100, statsIntervalMs: 300 });
    monitor.start();
    try {
      await eventually(() => monitor.state.connected, { what: 'the monitor to connect', timeoutMs: 10_000, intervalMs: 20 });
      assert.equal(monitor.state.osInfo?.machine, 'x86_64');
      assert.equal(monitor.state.frozen, false);
      assert.ok(changes >= 1);
      // The filesystems are kept and asked again at the stats interval, without a change of state.
      const firstAt = await eventually(() => monitor.stats?.at, { what: 'the monitor to keep the guest stats', timeoutMs: 10_000, intervalMs: 20 });
      assert.ok(Array.isArray(monitor.stats?.filesystems));
      const changesBefore = changes;
      await eventually(() => ((monitor.stats?.at ?? 0) > firstAt) || undefined, { what: 'the guest stats to be asked again', timeoutMs: 10_000, intervalMs: 20 });
      assert.equal(changes, changesBefore, 'new guest stats do not count as a change of the VMI status');
      assert.ok(agent !== undefined);
      await stopAgent(agent);
      await eventually(() => !monitor.state.connected, { what: 'the monitor to notice the agent is gone', timeoutMs: 10_000, intervalMs: 20 });
      assert.equal(monitor.stats, undefined, 'no agent, no guest stats');
      await assert.rejects(monitor.freeze(), (err: unknown) => err instanceof GuestAgentError && err.code === 'GuestAgentClosed');
      agent = await startAgent();
      await eventually(() => monitor.state.connected, { what: 'the monitor to reconnect', timeoutMs: 10_000, intervalMs: 20 });
    } finally {
      monitor.stop();
    }
  });
});
