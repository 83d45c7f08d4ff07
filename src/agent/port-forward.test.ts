import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { ApiError } from '../api/errors.js';
import type { KObject } from '../api/object.js';
import { dialGuestPort, podAddressOf } from './port-forward.js';

function vmi(spec: Record<string, unknown>, interfaces: unknown[]): KObject {
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'g', namespace: 'default' }, spec, status: { interfaces } };
}

test('the pod address is the pod network interface\'s, IPv4 first; the first interface when no networks are listed', () => {
  const spec = { networks: [{ name: 'data', multus: { networkName: 'br' } }, { name: 'default', pod: {} }] };
  const interfaces = [{ name: 'data', ipAddress: '192.0.2.9' }, { name: 'default', ipAddress: 'fd10::5', ipAddresses: ['fd10::5', '10.244.0.7'] }];
  assert.equal(podAddressOf(vmi(spec, interfaces)), '10.244.0.7');
  assert.equal(podAddressOf(vmi({}, [{ name: 'default', ipAddress: '10.244.0.8/24' }])), '10.244.0.8');
  assert.equal(podAddressOf(vmi(spec, [{ name: 'data', ipAddress: '192.0.2.9' }])), undefined);
  assert.equal(podAddressOf(vmi({}, [])), undefined);
});

test('a dial reaches the port at the pod address; no address or a closed port is a 400 that says why', async () => {
  const server = createServer((socket) => { socket.end('hi'); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const guest = vmi({}, [{ name: 'default', ipAddress: '127.0.0.1' }]);
  const socket = await dialGuestPort(guest, port);
  const got = await new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('utf8')));
    socket.on('end', () => { resolve(text); });
  });
  assert.equal(got, 'hi');
  await new Promise<void>((resolve) => server.close(() => { resolve(); }));

  await assert.rejects(dialGuestPort(guest, port), (err: unknown) => err instanceof ApiError && err.reason === 'BadRequest' && /cannot connect to port \d+ of VMI default\/g at 127\.0\.0\.1: connection refused/.test(err.message));
  await assert.rejects(dialGuestPort(vmi({}, []), 22), (err: unknown) => err instanceof ApiError && err.reason === 'BadRequest' && /has no pod network address/.test(err.message));
});
