/**
 * Leader election against the real in-process API server (memory store),
 * with short durations: one of two candidates leads; a clean stop hands
 * over at once; a leader that cannot renew stops its loops within the renew
 * deadline, before its lease runs out; a dead leader is replaced once its
 * lease has run out, not before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpClient, resources } from '../client/index.js';
import { silentLogger } from '../log/logger.js';
import { startTestServer } from '../testing/server.js';
import { eventually } from '../testing/wait.js';
import { LeaderElector, defaultLeaderLease, leaderRecordOf } from './leader-election.js';

const timing = { leaseDurationMs: 2_000, renewDeadlineMs: 1_000, retryPeriodMs: 200 };

/** A candidate whose callbacks record whether its loops run. */
function candidate(client: HttpClient, identity: string): { elector: LeaderElector; running: () => boolean; starts: () => number } {
  let running = false;
  let starts = 0;
  const elector = new LeaderElector(
    client,
    {
      startLeading: () => { running = true; starts++; return Promise.resolve(); },
      stopLeading: () => { running = false; return Promise.resolve(); },
    },
    { ...timing, identity, logger: silentLogger },
  );
  return { elector, running: () => running, starts: () => starts };
}

test('leader election on the Lease kube-system/vireo-controller-manager', async (t) => {
  const server = await startTestServer();
  const clients: HttpClient[] = [];
  const client = (target: string = server.url): HttpClient => {
    const made = new HttpClient({ server: target, token: server.token, caCert: server.pki.caCert, connectTimeoutMs: 500 });
    clients.push(made);
    return made;
  };
  const reader = client();
  const lease = async (): Promise<ReturnType<typeof leaderRecordOf>> => leaderRecordOf(await reader.get(resources.leases, defaultLeaderLease.namespace, defaultLeaderLease.name));
  t.after(async () => {
    for (const c of clients) c.close();
    await server.stop();
  });

  await t.test('one of two candidates leads; a clean stop hands the Lease over at once', async () => {
    const one = candidate(client(), 'one');
    const two = candidate(client(), 'two');
    one.elector.start();
    await eventually(() => one.running(), { what: 'the first candidate to lead', timeoutMs: 5_000 });
    two.elector.start();
    // Several of its retry periods: the second never leads while the first renews.
    const renewed = (await lease()).renewTime;
    await eventually(async () => (await lease()).renewTime !== renewed, { what: 'a renewal', timeoutMs: 5_000 });
    assert.equal(two.running(), false);
    const held = await lease();
    assert.equal(held.holderIdentity, 'one');
    assert.equal(held.leaseDurationSeconds, 2);
    const stoppedAt = Date.now();
    await one.elector.stop();
    assert.equal(one.running(), false, 'the loops stop before the Lease is released');
    await eventually(() => two.running(), { what: 'the second candidate to lead', timeoutMs: 5_000 });
    assert.ok(Date.now() - stoppedAt < timing.leaseDurationMs, 'the released Lease was taken before it would have expired');
    const taken = await lease();
    assert.equal(taken.holderIdentity, 'two');
    assert.equal(taken.leaseTransitions, held.leaseTransitions + 1);
    await two.elector.stop();
    assert.equal((await lease()).holderIdentity, '', 'released');
  });

  await t.test('a leader cut off from the API stops its loops within the renew deadline; the other takes over only after the lease ran out', async () => {
    // The leader's client goes through a port that stops answering: renewals fail as if the store were gone.
    const { createServer, connect } = await import('node:net');
    let open = true;
    const sockets = new Set<import('node:net').Socket>();
    const relay = createServer((socket) => {
      if (!open) { socket.destroy(); return; }
      const upstream = connect(Number(new URL(server.url).port), '127.0.0.1');
      sockets.add(socket);
      sockets.add(upstream);
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    t.after(() => { relay.close(); });
    const address = relay.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const cutOff = candidate(client(`https://127.0.0.1:${port}`), 'cut-off');
    const other = candidate(client(), 'other');
    cutOff.elector.start();
    await eventually(() => cutOff.running(), { what: 'the cut-off candidate to lead first', timeoutMs: 5_000 });
    other.elector.start();
    open = false;
    for (const socket of sockets) socket.destroy();
    const lastRenewal = Date.parse((await lease()).renewTime);
    await eventually(() => !cutOff.running(), { what: 'the cut-off leader to stop its loops', timeoutMs: 5_000, intervalMs: 20 });
    const stoppedAt = Date.now();
    assert.equal(other.running(), false, 'nobody else led while the cut-off leader still ran its loops');
    await eventually(() => other.running(), { what: 'the other candidate to lead', timeoutMs: 5_000, intervalMs: 20 });
    const acquired = Date.parse((await lease()).acquireTime);
    assert.ok(stoppedAt - lastRenewal <= timing.renewDeadlineMs + 300, `the loops stopped ${stoppedAt - lastRenewal} ms after the last renewal (renew deadline ${timing.renewDeadlineMs} ms)`);
    assert.ok(acquired - lastRenewal >= timing.leaseDurationMs, `taken over ${acquired - lastRenewal} ms after the last renewal, not before the lease ran out`);
    await cutOff.elector.stop();
    await other.elector.stop();
  });
});
