/**
 * Durability of the whole server: `kill -9` during 1,000 concurrent creates
 * loses no create that was acknowledged with 201.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'node:https';
import { freePort, startServerProcess } from '../../src/testing/process.js';
import type { ServerProcess } from '../../src/testing/process.js';

const dir = mkdtempSync(join(tmpdir(), 'vireo-crash-'));
after(() => { rmSync(dir, { recursive: true, force: true }); });

function post(agent: Agent, server: ServerProcess, path: string, body: object): Promise<number> {
  return new Promise((resolve) => {
    const text = JSON.stringify(body);
    const req = request(
      `${server.url}${path}`,
      { method: 'POST', agent, headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } },
      (res) => {
        res.resume();
        res.on('end', () => { resolve(res.statusCode ?? 0); });
        res.on('error', () => { resolve(0); });
      },
    );
    req.on('error', () => { resolve(0); });
    req.end(text);
  });
}

test('kill -9 during 1,000 concurrent creates loses no acknowledged write', async () => {
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const server = await startServerProcess({ dataDir, port });
  const agent = new Agent({ ca: server.caCert, keepAlive: true, maxSockets: 64 });
  const acked: string[] = [];
  let killed = false;
  const creates = Array.from({ length: 1000 }, async (_, i) => {
    const name = `cm-${i}`;
    const code = await post(agent, server, '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { i: String(i) } });
    if (code === 201) {
      acked.push(name);
      if (acked.length >= 300 && !killed) {
        killed = true;
        server.child.kill('SIGKILL');
      }
    }
  });
  await Promise.all(creates);
  agent.destroy();
  assert.equal(await server.exited, 'SIGKILL');
  assert.ok(killed, `the server was killed mid-way (acknowledged: ${acked.length})`);
  assert.ok(acked.length < 1000, 'the kill landed before every create finished');

  const restarted = await startServerProcess({ dataDir, port });
  try {
    const agent2 = new Agent({ ca: restarted.caCert });
    const body = await new Promise<string>((resolve, reject) => {
      request(`${restarted.url}/api/v1/namespaces/default/configmaps`, { agent: agent2, headers: { authorization: `Bearer ${restarted.token}` } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => { resolve(text); });
      })
        .on('error', reject)
        .end();
    });
    agent2.destroy();
    const present = new Set((JSON.parse(body) as { items: { metadata: { name: string } }[] }).items.map((i) => i.metadata.name));
    const lost = acked.filter((name) => !present.has(name));
    assert.deepEqual(lost, [], `${lost.length} of ${acked.length} acknowledged creates were lost`);
  } finally {
    restarted.child.kill('SIGKILL');
    await restarted.exited;
  }
});
