/**
 * A node's pod network in miniature, made of real kernel networking for
 * the policy tests and benchmark: a "node" network namespace holding a
 * bridge, and "sandbox" namespaces joined to it by veths (the host side
 * stays in the node namespace, like the podnet datapath's). The host's
 * own namespace is never touched. Each sandbox runs one small Node process
 * that listens and connects on command (JSON lines on stdin), so probes
 * cost no process start. `destroy()` removes every namespace it made.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

function run(file: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 20_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else reject(new Error(`${file} ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
    });
  });
}

/** Runs `ip args…`. */
export function ip(...args: string[]): Promise<string> {
  return run('ip', args);
}

const sandboxProgram = `
const net = require('node:net');
const held = new Map();
const reply = (id, body) => process.stdout.write(JSON.stringify({ id, ...body }) + '\\n');
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  if (c.op === 'listen') {
    const server = net.createServer((k) => { k.on('data', (d) => k.write(d)); k.on('error', () => {}); });
    server.on('error', (e) => reply(c.id, { result: e.code || e.message }));
    server.listen(c.port, c.host, () => reply(c.id, { result: 'listening' }));
  } else if (c.op === 'connect') {
    const k = net.connect({ host: c.host, port: c.port, ...(c.localAddress ? { localAddress: c.localAddress } : {}) });
    let done = false;
    const finish = (result) => { if (done) return; done = true; clearTimeout(timer); if (!(c.hold && result === 'connected')) k.destroy(); reply(c.id, { result }); };
    const timer = setTimeout(() => finish('timeout'), c.timeoutMs);
    k.on('connect', () => k.write('ping'));
    k.once('data', () => { if (c.hold) held.set(c.id, k); finish('connected'); });
    k.on('error', (e) => finish(e.code || e.message));
  } else if (c.op === 'echo') {
    const k = held.get(c.handle);
    if (k === undefined) return reply(c.id, { result: 'no such connection' });
    const timer = setTimeout(() => { k.off('data', onData); reply(c.id, { result: 'timeout' }); }, c.timeoutMs);
    const onData = () => { clearTimeout(timer); reply(c.id, { result: 'echoed' }); };
    k.once('data', onData);
    k.write('again');
  } else if (c.op === 'send') {
    const k = net.connect({ host: c.host, port: c.port });
    const chunk = Buffer.alloc(256 * 1024);
    let sent = 0; let start = 0; let stopped = false;
    const pump = () => { while (!stopped && k.write(chunk)) sent += chunk.length; };
    k.on('connect', () => { start = process.hrtime.bigint(); k.on('drain', () => { sent += chunk.length; pump(); }); pump();
      setTimeout(() => { stopped = true; const s = Number(process.hrtime.bigint() - start) / 1e9; k.destroy(); reply(c.id, { result: 'sent', bytes: sent, seconds: s }); }, c.durationMs); });
    k.on('error', (e) => reply(c.id, { result: e.code || e.message }));
  } else if (c.op === 'sink') {
    const server = net.createServer((k) => { k.on('data', () => {}); k.on('error', () => {}); });
    server.listen(c.port, c.host, () => reply(c.id, { result: 'listening' }));
  }
});
`;

/** One sandbox namespace with its command process. */
export class Sandbox {
  private nextId = 0;
  private readonly waiting = new Map<number, (reply: Record<string, unknown>) => void>();

  constructor(
    readonly netns: string,
    /** The host side of its veth, in the node namespace. */
    readonly hostInterface: string,
    readonly ipv4: string,
    readonly ipv6: string,
    private readonly child: ChildProcessWithoutNullStreams,
  ) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const reply = JSON.parse(line) as Record<string, unknown>;
      const id = typeof reply.id === 'number' ? reply.id : -1;
      this.waiting.get(id)?.(reply);
      this.waiting.delete(id);
    });
  }

  private command(body: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`sandbox ${this.netns}: no answer to ${String(body.op)} within ${timeoutMs} ms`)); }, timeoutMs);
      this.waiting.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.child.stdin.write(`${JSON.stringify({ id, ...body })}\n`);
    });
  }

  /** Listens on `port` (all addresses), echoing what it receives. */
  async listen(port: number): Promise<void> {
    const reply = await this.command({ op: 'listen', port, host: '::' }, 10_000);
    if (reply.result !== 'listening') throw new Error(`sandbox ${this.netns} cannot listen on ${port}: ${String(reply.result)}`);
  }

  /** Connects and exchanges one message: 'connected', 'timeout' (dropped) or an error code such as ECONNREFUSED. */
  async connect(host: string, port: number, timeoutMs = 1500, localAddress?: string): Promise<string> {
    return String((await this.command({ op: 'connect', host, port, timeoutMs, localAddress }, timeoutMs + 10_000)).result);
  }

  /** Adds an address to its eth0 (to send from an address that is not its own). */
  async addAddress(cidr: string): Promise<void> {
    await ip('-n', this.netns, 'addr', 'add', cidr, 'dev', 'eth0');
  }

  /** Opens a connection and keeps it; returns a handle for {@link echo}. */
  async open(host: string, port: number): Promise<number> {
    const id = this.nextId;
    const reply = await this.command({ op: 'connect', host, port, timeoutMs: 3000, hold: true }, 15_000);
    if (reply.result !== 'connected') throw new Error(`sandbox ${this.netns} cannot connect to ${host}:${port}: ${String(reply.result)}`);
    return id;
  }

  /** Sends on a kept connection and waits for the echo: 'echoed' or 'timeout'. */
  async echo(handle: number, timeoutMs = 1500): Promise<string> {
    return String((await this.command({ op: 'echo', handle, timeoutMs }, timeoutMs + 10_000)).result);
  }

  /** Receives and discards on `port`. */
  async sink(port: number): Promise<void> {
    await this.command({ op: 'sink', port, host: '::' }, 10_000);
  }

  /** Sends as fast as it can for `durationMs`; bytes per second. */
  async send(host: string, port: number, durationMs: number): Promise<number> {
    const reply = await this.command({ op: 'send', host, port, durationMs }, durationMs + 15_000);
    if (reply.result !== 'sent' || typeof reply.bytes !== 'number' || typeof reply.seconds !== 'number') throw new Error(`send failed: ${String(reply.result)}`);
    return reply.bytes / reply.seconds;
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }

  /**
   * Starts the command process in a network namespace made elsewhere
   * (a pod network sandbox, for the benchmark); `stop()` ends only the
   * process, the namespace is its maker's to remove.
   */
  static spawnIn(netns: string, addresses: { hostInterface: string; ipv4: string; ipv6: string }): Sandbox {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', sandboxProgram], { stdio: ['pipe', 'pipe', 'pipe'] });
    return new Sandbox(netns, addresses.hostInterface, addresses.ipv4, addresses.ipv6, child);
  }
}

/** A node namespace with a bridge, and its sandboxes. */
export class NetnsLab {
  private readonly sandboxes: Sandbox[] = [];
  private readonly namespaces: string[] = [];
  private count = 0;

  private constructor(
    /** Prefix of every name this lab makes (unique per lab). */
    readonly prefix: string,
    /** The node namespace, holding the bridge and the host-side veths. */
    readonly node: string,
    /** The second octet of this lab's 10.x.0.0/16. */
    private readonly subnet: number,
  ) {}

  /** Makes the node namespace and its bridge `br0` (10.<subnet>.0.1/16, fd00:<subnet>::1/64). */
  static async create(tag: string): Promise<NetnsLab> {
    const prefix = `vp${tag}${process.pid.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    const subnet = 100 + Math.floor(Math.random() * 150);
    const lab = new NetnsLab(prefix, `${prefix}-node`, subnet);
    await ip('netns', 'add', lab.node);
    lab.namespaces.push(lab.node);
    await ip('-n', lab.node, 'link', 'set', 'lo', 'up');
    await ip('-n', lab.node, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', lab.node, 'link', 'set', 'br0', 'up');
    await ip('-n', lab.node, 'addr', 'add', `10.${subnet}.0.1/16`, 'dev', 'br0');
    return lab;
  }

  /** Adds a sandbox with the next addresses; its command process is started. */
  async addSandbox(): Promise<Sandbox> {
    const index = ++this.count;
    const netns = `${this.prefix}-s${index}`;
    // Names only need to be unique inside this lab's node namespace.
    const hostInterface = `vh${index}`;
    const ipv4 = `10.${this.subnet}.1.${index}`;
    const ipv6 = `fd00:${this.subnet}::${index.toString(16)}`;
    await ip('netns', 'add', netns);
    this.namespaces.push(netns);
    await ip('-n', this.node, 'link', 'add', hostInterface, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns);
    await ip('-n', this.node, 'link', 'set', hostInterface, 'master', 'br0', 'up');
    await ip('-n', netns, 'link', 'set', 'lo', 'up');
    await ip('-n', netns, 'addr', 'add', `${ipv4}/16`, 'dev', 'eth0');
    await ip('-n', netns, 'addr', 'add', `${ipv6}/64`, 'dev', 'eth0', 'nodad');
    await ip('-n', netns, 'link', 'set', 'eth0', 'up');
    const sandbox = Sandbox.spawnIn(netns, { hostInterface, ipv4, ipv6 });
    this.sandboxes.push(sandbox);
    return sandbox;
  }

  /**
   * Two namespaces joined directly by a veth pair, no bridge and no node
   * (the baseline of the benchmark): 10.<subnet>.250.1 and .2.
   */
  async addDirectPair(): Promise<[Sandbox, Sandbox]> {
    const names = [`${this.prefix}-p1`, `${this.prefix}-p2`] as const;
    for (const netns of names) {
      await ip('netns', 'add', netns);
      this.namespaces.push(netns);
      await ip('-n', netns, 'link', 'set', 'lo', 'up');
    }
    await ip('-n', names[0], 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', names[1]);
    const pair: Sandbox[] = [];
    for (const [i, netns] of names.entries()) {
      const ipv4 = `10.${this.subnet}.250.${i + 1}`;
      const ipv6 = `fd00:${this.subnet}:250::${i + 1}`;
      await ip('-n', netns, 'addr', 'add', `${ipv4}/24`, 'dev', 'eth0');
      await ip('-n', netns, 'addr', 'add', `${ipv6}/64`, 'dev', 'eth0', 'nodad');
      await ip('-n', netns, 'link', 'set', 'eth0', 'up');
      const sandbox = Sandbox.spawnIn(netns, { hostInterface: '', ipv4, ipv6 });
      this.sandboxes.push(sandbox);
      pair.push(sandbox);
    }
    const [first, second] = pair;
    if (first === undefined || second === undefined) throw new Error('the pair was not made');
    return [first, second];
  }

  /** Sets sysctls (`key=value`) in the node namespace only. */
  async sysctl(...settings: string[]): Promise<void> {
    await run('ip', ['netns', 'exec', this.node, 'sysctl', '-qw', ...settings]);
  }

  /** The tables in the node namespace (`nft list tables`). */
  async tables(): Promise<string> {
    return run('ip', ['netns', 'exec', this.node, 'nft', 'list', 'tables']);
  }

  /** Stops every sandbox process and deletes every namespace (veths and the bridge go with them). */
  async destroy(): Promise<void> {
    for (const sandbox of this.sandboxes) sandbox.stop();
    for (const netns of this.namespaces.reverse()) await ip('netns', 'del', netns).catch(() => undefined);
  }

  /** The namespaces this lab made that still exist. */
  async leftovers(): Promise<string[]> {
    const listed = await ip('netns', 'list');
    return listed
      .split('\n')
      .map((line) => line.split(' ')[0] ?? '')
      .filter((name) => name.startsWith(`${this.prefix}-`));
  }
}
