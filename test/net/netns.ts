/**
 * Network namespaces for the CNI tests: every test makes its own, uniquely
 * named (`vireo-cni-test-…`), including a "host" namespace the plugins run
 * in, so bridges and veth ends never touch the real host; all of them go at
 * the end. Commands are `ip` argument arrays, never a shell.
 */
import { randomBytes } from 'node:crypto';
import { runTool } from '../../src/host/run-tool.js';

const signal = new AbortController().signal;

/** Runs `ip args…` and returns its stdout. */
export function ip(...args: string[]): Promise<string> {
  return runTool('ip', args, { signal, timeoutMs: 20_000 });
}

/** Runs a command inside a namespace (`ip netns exec NS …`). */
export function inNetns(netns: string, command: string, ...args: string[]): Promise<string> {
  return runTool('ip', ['netns', 'exec', netns, command, ...args], { signal, timeoutMs: 20_000 });
}

/** A short random suffix for names that must be unique (interface names stop at 15 characters). */
export function uniqueSuffix(): string {
  return randomBytes(3).toString('hex');
}

/** The namespaces one test made, and their removal. */
export class Namespaces {
  private readonly made: string[] = [];

  /** Makes `vireo-cni-test-<role>-<random>` with its loopback up. */
  async create(role: string): Promise<string> {
    const name = `vireo-cni-test-${role}-${uniqueSuffix()}`;
    await ip('netns', 'add', name);
    this.made.push(name);
    await ip('-n', name, 'link', 'set', 'lo', 'up');
    return name;
  }

  /** Deletes every namespace made (with it go the bridges and veths inside); throws if one is still there. */
  async removeAll(): Promise<void> {
    const names = this.made.splice(0);
    for (const name of names) await ip('netns', 'delete', name).catch(() => undefined);
    const left = (await namespacesNamed('vireo-cni-test-')).filter((name) => names.includes(name));
    if (left.length > 0) throw new Error(`network namespaces left behind: ${left.join(', ')}`);
  }
}

/** The IPv4 addresses (CIDR) of an interface in a namespace; empty when it does not exist. */
export async function addressesOf(netns: string, ifName: string): Promise<string[]> {
  let text: string;
  try {
    text = await ip('-n', netns, '-j', 'addr', 'show', 'dev', ifName);
  } catch {
    return [];
  }
  const links = JSON.parse(text) as { addr_info?: { family: string; local: string; prefixlen: number }[] }[];
  return links.flatMap((l) => l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
}

/** The MAC of an interface in a namespace, or undefined when it does not exist. */
export async function macOf(netns: string, ifName: string): Promise<string | undefined> {
  try {
    const links = JSON.parse(await ip('-n', netns, '-j', 'link', 'show', 'dev', ifName)) as { address?: string }[];
    return links[0]?.address;
  } catch {
    return undefined;
  }
}

/** The names of the links in a namespace. */
export async function linksOf(netns: string): Promise<string[]> {
  const links = JSON.parse(await ip('-n', netns, '-j', 'link', 'show')) as { ifname: string }[];
  return links.map((l) => l.ifname);
}

/** The namespaces on the host whose name starts with `prefix`. */
export async function namespacesNamed(prefix: string): Promise<string[]> {
  const text = await ip('netns', 'list');
  return text.split('\n').map((line) => line.split(' ')[0] ?? '').filter((name) => name.startsWith(prefix));
}
