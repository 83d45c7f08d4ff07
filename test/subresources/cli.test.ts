/**
 * The `vireo` VM commands end to end, as child processes against the real
 * server: start/stop/pause change what they should, console works with
 * piped stdin (and its escape key), logs prints and follows the serial
 * output, vnc proxies a TCP viewer, and failures print what went wrong with
 * the CLI's exit codes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { eventually } from '../../src/testing/wait.js';
import { unseenTail } from '../../src/cli/commands/logs.js';
import { createVm, getVm, runningVmi, setVmiStatus, specOf, startFixture, vireo } from './support.js';
import type { Fixture } from './support.js';

let fx: Fixture;
before(async () => { fx = await startFixture(); });
after(async () => { await fx.stop(); });

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function which(binary: string): string | undefined {
  try {
    return execFileSync('which', [binary], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

const scriptBinary = which('script');

function run(args: string[], stdin?: string): ReturnType<typeof vireo> {
  return vireo(args, { kubeconfig: fx.door.kubeconfig, ...(stdin === undefined ? {} : { stdin }) });
}

/** A long-running `vireo` command whose output the test watches. */
function background(args: string[]): { output: () => string; stop: () => Promise<number | null> } {
  const child = spawn(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', KUBECONFIG: fx.door.kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => { resolve(code); }));
  return {
    output: () => out,
    stop: () => {
      child.kill('SIGINT');
      return exited;
    },
  };
}

test('vireo start and stop change the VM, print what they did, and refuse what KubeVirt refuses', async () => {
  await createVm(fx.test, 'cli-vm', { runStrategy: 'Halted' });
  const started = await run(['start', 'cli-vm']);
  assert.equal(started.code, 0, started.stderr);
  assert.equal(started.stdout, 'VM cli-vm was scheduled to start\n');
  assert.equal(specOf(await getVm(fx.test, 'cli-vm')).runStrategy, 'Always');

  const again = await run(['start', 'cli-vm']);
  assert.equal(again.code, 5);
  assert.equal(again.stderr, 'vireo: cannot start VM cli-vm: Always does not support manual start requests: the VM controller starts it by itself\n');

  const stopped = await run(['stop', 'cli-vm', '-n', 'default']);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.equal(specOf(await getVm(fx.test, 'cli-vm')).runStrategy, 'Halted');

  const dry = await run(['start', 'cli-vm', '--dry-run']);
  assert.equal(dry.stdout, 'VM cli-vm was scheduled to start (dry run)\n');
  assert.equal(specOf(await getVm(fx.test, 'cli-vm')).runStrategy, 'Halted');
});

test('a missing VM is "VM x not found in namespace y" with exit code 3; bad usage is exit code 2', async () => {
  const missing = await run(['stop', 'nope', '-n', 'kube-public']);
  assert.equal(missing.code, 3);
  assert.equal(missing.stderr, 'vireo: VM nope not found in namespace kube-public\n');
  const usage = await run(['stop', 'a', 'b']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /usage: vireo stop NAME/);
  assert.equal((await run(['stop', 'a', '--grace-period', '0'])).code, 2);
  const byFlag = await vireo(['stop', 'nope', '--kubeconfig', fx.door.kubeconfig], { kubeconfig: '/nonexistent/kubeconfig' });
  assert.equal(byFlag.stderr, 'vireo: VM nope not found in namespace default\n');
  const noConfig = await vireo(['start', 'x'], { kubeconfig: '/nonexistent/kubeconfig' });
  assert.equal(noConfig.code, 3);
  assert.match(noConfig.stderr, /no kubeconfig at \/nonexistent\/kubeconfig/);
});

test('vireo console with piped stdin sends it and prints the guest\'s answer', async () => {
  await runningVmi(fx, 'cli-console');
  const res = await run(['console', 'cli-console', '--linger', '2'], 'echo hello-from-cli\n');
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stderr, 'Successfully connected to cli-console console. Press Ctrl+] to exit console.\n');
  assert.equal(res.stdout, 'echo hello-from-cli\n');
});

test('vireo console in a terminal is raw (Ctrl+C goes to the guest) and Ctrl+] leaves', { skip: scriptBinary === undefined ? 'util-linux script (for a pseudo-terminal) is not installed' : false }, async () => {
  await runningVmi(fx, 'cli-tty');
  // script(1) runs the CLI on a pseudo-terminal, so stdin is a TTY as for a user at a shell.
  const child = spawn(scriptBinary ?? 'script', ['-qfec', `${process.execPath} ${cli} console cli-tty`, '/dev/null'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', KUBECONFIG: fx.door.kubeconfig },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => { resolve(code); }));
  await eventually(() => out.includes('Press Ctrl+] to exit console.'), { what: 'the console to connect' });
  child.stdin.write('hi\r\x03');
  await eventually(async () => (await fx.agent.serialLog('default', 'cli-tty')) === 'hi\r\x03', { what: 'the raw keys to reach the guest' });
  child.stdin.write('\x1d');
  assert.equal(await exited, 0, out);
});

test('Ctrl+] ends the console session; nothing after it reaches the guest', async () => {
  await runningVmi(fx, 'cli-escape');
  const res = await run(['console', 'cli-escape'], 'before\x1dafter\n');
  assert.equal(res.code, 0, res.stderr);
  assert.doesNotMatch(res.stdout, /after/);
  await eventually(async () => !(await fx.agent.serialLog('default', 'cli-escape')).includes('after') && (await fx.agent.serialLog('default', 'cli-escape')).includes('before'), {
    what: 'the guest to have seen "before" only',
  });
});

test('vireo console on a stopped VM says the VMI is not running and how to start it', async () => {
  await createVm(fx.test, 'cli-stopped', { runStrategy: 'Halted' });
  const res = await run(['console', 'cli-stopped']);
  assert.equal(res.code, 5);
  assert.equal(res.stderr, 'vireo: VMI is not running: VM cli-stopped in namespace default is stopped; start it with: vireo start cli-stopped -n default\n');
  const missing = await run(['console', 'cli-nothing']);
  assert.equal(missing.code, 3);
  assert.equal(missing.stderr, 'vireo: VMI cli-nothing not found in namespace default\n');
});

test('vireo pause vm NAME pauses its guest; unpause vmi NAME resumes it', async () => {
  await createVm(fx.test, 'cli-pause', { runStrategy: 'Always' });
  await runningVmi(fx, 'cli-pause');
  const pid = fx.agent.guestPid('default', 'cli-pause');
  const paused = await run(['pause', 'vm', 'cli-pause']);
  assert.equal(paused.code, 0, paused.stderr);
  assert.equal(paused.stdout, 'VMI cli-pause was scheduled to pause\n');
  await eventually(() => readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') T '), { what: 'the guest to stop' });
  await setVmiStatus(fx.test, 'cli-pause', { phase: 'Running', nodeName: 'node-a', conditions: [{ type: 'Paused', status: 'True' }] });
  const resumed = await run(['unpause', 'vmi', 'cli-pause']);
  assert.equal(resumed.code, 0, resumed.stderr);
  await eventually(() => !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') T '), { what: 'the guest to run again' });
  await setVmiStatus(fx.test, 'cli-pause', { phase: 'Running', nodeName: 'node-a' });
  assert.equal((await run(['soft-reboot', 'cli-pause'])).code, 0);
  assert.deepEqual(fx.agent.actions.filter((a) => a.name === 'cli-pause').map((a) => a.action), ['pause', 'unpause', 'softreboot']);

  const noVm = await run(['pause', 'vm', 'cli-no-vm']);
  assert.equal(noVm.stderr, 'vireo: VM cli-no-vm not found in namespace default\n');
  const notPaused = await run(['unpause', 'cli-pause']);
  assert.equal(notPaused.code, 5);
  assert.match(notPaused.stderr, /cannot unpause VMI cli-pause: VMI is not paused/);
});

test('vireo logs prints the kept serial output; -f follows new output until interrupted', async () => {
  await runningVmi(fx, 'cli-logs');
  const line = await fx.agent.openStream('default', 'cli-logs', 'console');
  line.write('boot: hello\r\n');
  await eventually(async () => (await fx.agent.serialLog('default', 'cli-logs')).includes('boot: hello'), { what: 'the first line in the log' });
  const printed = await run(['logs', 'cli-logs']);
  assert.equal(printed.code, 0, printed.stderr);
  assert.equal(printed.stdout, 'boot: hello\r\n');

  const follow = background(['logs', 'cli-logs', '-f']);
  await eventually(() => follow.output().includes('boot: hello'), { what: 'logs -f to print the kept log' });
  line.write('later: world\r\n');
  await eventually(() => follow.output().includes('later: world'), { what: 'logs -f to print the new line' });
  assert.equal(await follow.stop(), 0);
  assert.equal(follow.output(), 'boot: hello\r\nlater: world\r\n');
  line.destroy();
});

test('unseenTail drops the live bytes the kept log already ended with', () => {
  assert.equal(unseenTail(Buffer.from('abc\r\nde'), Buffer.from('de\r\nfg')).toString(), '\r\nfg');
  assert.equal(unseenTail(Buffer.from('abc'), Buffer.from('xyz')).toString(), 'xyz');
  assert.equal(unseenTail(Buffer.from(''), Buffer.from('xyz')).toString(), 'xyz');
  assert.equal(unseenTail(Buffer.from('xyz'), Buffer.from('xyz')).toString(), '');
});

test('vireo vnc serves a local port whose bytes reach the guest\'s VNC stream', async () => {
  await runningVmi(fx, 'cli-vnc');
  const proxy = background(['vnc', 'cli-vnc', '--port', '0']);
  const found = await eventually(() => /listening on 127\.0\.0\.1:(\d+)/.exec(proxy.output()), { what: 'the proxy address' });
  const port = Number(found[1]);
  const viewer = connect(port, '127.0.0.1');
  let got = '';
  viewer.on('data', (c: Buffer) => (got += c.toString('utf8')));
  viewer.write('RFB 003.008\n');
  await eventually(() => got === 'RFB 003.008\n', { what: 'the bytes to come back through the proxy' });
  viewer.destroy();
  assert.equal(await proxy.stop(), 0);

  const missing = await run(['vnc', 'cli-vnc-missing']);
  assert.equal(missing.code, 3);
  assert.equal(missing.stderr, 'vireo: VMI cli-vnc-missing not found in namespace default\n');
});

test('vireo port-forward forwards local ports to the guest\'s ports (vm/NAME and vmi/NAME.NS), and --stdio bridges one to stdin/stdout', async () => {
  // The test agent's guests have their ports on loopback: a TCP server here stands for a server in the guest.
  const { createServer } = await import('node:net');
  const server = createServer((socket) => {
    socket.on('data', (d: Buffer) => {
      const text = d.toString('utf8');
      // "bye" closes the connection, as a server ending its session does.
      if (text === 'bye') socket.end('guest says bye');
      else socket.write(`guest got ${text}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const guestPort = typeof address === 'object' && address !== null ? address.port : 0;
  try {
    await createVm(fx.test, 'cli-pf', { runStrategy: 'Always' });
    await runningVmi(fx, 'cli-pf');
    const forward = background(['port-forward', 'vm/cli-pf.default', `0:${guestPort}`]);
    const found = await eventually(() => /Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)/.exec(forward.output()), { what: 'the forwarded port' });
    assert.equal(Number(found[2]), guestPort);
    const client = connect(Number(found[1]), '127.0.0.1');
    let got = '';
    client.on('data', (c: Buffer) => (got += c.toString('utf8')));
    client.write('hello');
    await eventually(() => got === 'guest got hello', { what: 'the guest port to answer through the forward' });
    client.destroy();
    assert.equal(await forward.stop(), 0);

    const piped = await run(['port-forward', '--stdio', 'vmi/cli-pf', String(guestPort)], 'bye');
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout, 'guest says bye');

    const stopped = await run(['port-forward', 'vm/cli-pf-missing', '80']);
    assert.equal(stopped.code, 3);
    assert.equal(stopped.stderr, 'vireo: VMI cli-pf-missing not found in namespace default\n');
    const udp = await run(['port-forward', 'vmi/cli-pf', '53/udp']);
    assert.equal(udp.code, 2);
    assert.match(udp.stderr, /UDP ports cannot be forwarded/);
    const badTarget = await run(['port-forward', 'cli-pf', '80']);
    assert.equal(badTarget.code, 2);
    assert.match(badTarget.stderr, /write vm\/NAME or vmi\/NAME/);
  } finally {
    server.close();
  }
});
