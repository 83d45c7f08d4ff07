/**
 * Shared machinery for the kubectl end-to-end tests: one in-process server
 * per kubectl version, a runner that asserts on exit codes, background
 * kubectl processes (`get -w`, `wait`, `delete --wait`) read until an
 * expected line appears, and a parser for kubectl's tables.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { kubectl, kubectlBinary } from '../../src/testing/kubectl.js';
import type { KubectlResult } from '../../src/testing/kubectl.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';
import { eventually } from '../../src/testing/wait.js';

export { eventually };

/** The oldest and newest kubectl we promise to work with. */
export const kubectlMinors = [28, 33];

export interface RunOptions {
  stdin?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** One kubectl binary against one server. */
export class Kubectl {
  private server: TestServer | undefined;
  private readonly children = new Set<Background>();

  constructor(
    readonly minor: number,
    readonly binary: string,
  ) {}

  get test(): TestServer {
    if (this.server === undefined) throw new Error('the test server is not started: use kubectlSuites()');
    return this.server;
  }

  async start(): Promise<void> {
    this.server = await startTestServer();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.children].map((c) => c.stop()));
    await this.server?.stop();
  }

  run(args: string[], options: RunOptions = {}): Promise<KubectlResult> {
    return kubectl(args, { kubeconfig: this.test.kubeconfig, binary: this.binary, ...options });
  }

  /** Runs kubectl, asserts it succeeded, returns its stdout. */
  async ok(args: string[], options: RunOptions = {}): Promise<string> {
    const r = await this.run(args, options);
    assert.equal(r.code, 0, `kubectl ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  }

  /** Runs kubectl, asserts it failed, returns the result. */
  async fails(args: string[], options: RunOptions = {}): Promise<KubectlResult> {
    const r = await this.run(args, options);
    assert.notEqual(r.code, 0, `kubectl ${args.join(' ')} should have failed\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r;
  }

  /** `kubectl apply -f -` with the manifest on stdin. */
  apply(manifest: string, ...args: string[]): Promise<string> {
    return this.ok(['apply', '-f', '-', ...args], { stdin: manifest });
  }

  /** Creates a namespace (through kubectl) and returns its name. */
  async namespace(name: string): Promise<string> {
    const out = await this.apply(`apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`);
    assert.equal(out, `namespace/${name} created\n`);
    return name;
  }

  /** `kubectl get … -o json`, parsed. */
  async json(args: string[]): Promise<Record<string, unknown>> {
    return JSON.parse(await this.ok(['get', ...args, '-o', 'json'])) as Record<string, unknown>;
  }

  /** One JSONPath expression's output for one object. */
  jsonpath(args: string[], expression: string): Promise<string> {
    return this.ok(['get', ...args, '-o', `jsonpath=${expression}`]);
  }

  /** Starts kubectl without waiting for it; `stop()` ends it (and every one left at suite end). */
  background(args: string[], options: { env?: Record<string, string> } = {}): Background {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dirname(this.test.kubeconfig), KUBECONFIG: this.test.kubeconfig, ...options.env };
    const child = new Background(spawn(this.binary, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }), `kubectl ${args.join(' ')}`);
    this.children.add(child);
    void child.exited.then(() => this.children.delete(child));
    return child;
  }
}

/** A running kubectl whose output is read as it arrives. */
export class Background {
  stdout = '';
  stderr = '';
  code: number | null | undefined;
  readonly exited: Promise<number | null>;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly child: ChildProcess,
    private readonly label: string,
  ) {
    child.stdout?.on('data', (c: Buffer) => {
      this.append('stdout', c);
    });
    child.stderr?.on('data', (c: Buffer) => {
      this.append('stderr', c);
    });
    this.exited = new Promise((resolve) => {
      child.once('close', (code) => {
        this.code = code;
        this.notify();
        resolve(code);
      });
    });
  }

  private append(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    this[stream] += chunk.toString('utf8');
    this.notify();
  }

  private notify(): void {
    for (const l of this.listeners) l();
  }

  /** Resolves when `predicate` holds on the output so far; fails at the deadline or if kubectl exits first. */
  until(what: string, predicate: (b: Background) => boolean, timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (err === undefined) resolve();
        else reject(err);
      };
      const check = (): void => {
        if (predicate(this)) done();
        else if (this.code !== undefined) done(new Error(`${this.label} exited (${String(this.code)}) before ${what}\n${this.describe()}`));
      };
      const timer = setTimeout(() => {
        done(new Error(`timed out after ${timeoutMs} ms waiting for ${what} from ${this.label}\n${this.describe()}`));
      }, timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  /**
   * Resolves once kubectl's watch request has been answered. Needs `-v=6`:
   * kubectl then logs each response, in 1.28's and 1.33's formats alike
   * with the URL (`…watch=true…`) and `200 OK` on one line.
   */
  watching(): Promise<void> {
    return this.until('its watch to start', (b) => b.stderr.split('\n').some((l) => l.includes('watch=true') && l.includes('200 OK')));
  }

  /** Waits for kubectl to exit by itself and returns its result. */
  async result(timeoutMs = 30_000): Promise<KubectlResult> {
    await this.until('it to exit', (b) => b.code !== undefined, timeoutMs);
    return { code: this.code ?? -1, stdout: this.stdout, stderr: this.stderr };
  }

  async stop(): Promise<void> {
    if (this.code === undefined) this.child.kill('SIGTERM');
    await this.exited;
  }

  private describe(): string {
    return `stdout: ${this.stdout}\nstderr: ${this.stderr.split('\n').filter((l) => !/^I\d{4} /.test(l)).join('\n')}`;
  }
}

/**
 * Declares `body` once per kubectl version, each in its own suite with its
 * own server. A missing binary gives one skipped test that says so.
 */
export function kubectlSuites(area: string, body: (k: Kubectl) => void): void {
  for (const minor of kubectlMinors) {
    const binary = kubectlBinary(minor);
    if (binary === undefined) {
      test(`${area} with kubectl 1.${minor}: skipped because kubectl.1.${minor} is not installed next to the kubectl on PATH`, { skip: true });
      continue;
    }
    describe(`${area} with kubectl 1.${minor}`, () => {
      const k = new Kubectl(minor, binary);
      before(() => k.start());
      after(() => k.stop());
      body(k);
    });
  }
}

export interface Table {
  header: string[];
  rows: Record<string, string>[];
}

/**
 * Parses kubectl's column output: each cell starts where its header starts
 * (kubectl aligns columns with a tab writer), so empty cells stay empty.
 */
export function parseTable(text: string): Table {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const headerLine = lines[0] ?? '';
  const starts: { name: string; at: number }[] = [];
  for (const m of headerLine.matchAll(/\S+/g)) starts.push({ name: m[0], at: m.index });
  const rows = lines.slice(1).map((line) => {
    const row: Record<string, string> = {};
    starts.forEach((col, i) => {
      const end = starts[i + 1]?.at ?? line.length;
      row[col.name] = line.slice(col.at, end).trim();
    });
    return row;
  });
  return { header: starts.map((s) => s.name), rows };
}

/** The row whose NAME column is `name`, or a failed assertion that shows the table. */
export function rowNamed(table: Table, name: string): Record<string, string> {
  const row = table.rows.find((r) => r.NAME === name);
  assert.ok(row !== undefined, `no row named ${name} in ${JSON.stringify(table)}`);
  return row;
}

/** The repository root (where package.json is), found from this compiled file. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'vireo') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the vireo repository root above the test file');
    dir = parent;
  }
}

/** A folder of upstream example manifests in `../shared` beside the repository (never copied into it). */
export function sharedExamples(folder: string): string {
  return join(repoRoot(), '..', 'shared', folder);
}

/** Ages kubectl prints for objects created seconds ago. */
export const youngAge = /^\d+s$/;

/** A minimal halted VirtualMachine manifest (YAML), optionally with labels written as `a: b, c: d`. */
export function vmManifest(name: string, labels?: string): string {
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: ${name}
${labels === undefined ? '' : `  labels: {${labels}}\n`}spec:
  runStrategy: Halted
  template:
    spec:
      domain:
        devices: {}
        resources:
          requests: {memory: 64Mi}
`;
}
