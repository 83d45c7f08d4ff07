/**
 * What the pod network tests share: a cluster CIDR of their own (so test
 * files running at once never put two node bridges on one subnet), and
 * snapshots of the host's network state to prove a test left nothing.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { readdirSync } from 'node:fs';
import { randomInt } from 'node:crypto';

/** A /24 in 10.200.0.0–10.239.255.0, random per test file: only this host routes it, to its own bridge. */
export function testClusterCidr(): string {
  return `10.${200 + randomInt(40)}.${randomInt(256)}.0/24`;
}

/** A /64 of fd00:db8::/32-style ULA space, random per test file. */
export function testClusterCidr6(): string {
  return `fd00:${randomInt(65_536).toString(16)}:${randomInt(65_536).toString(16)}::/64`;
}

/** The host's namespaces, links and nftables tables whose names contain `marker`. */
export function hostNetworkState(markers: readonly string[]): { netns: string[]; links: string[]; tables: string[] } {
  const has = (line: string): boolean => markers.some((m) => line.includes(m));
  let netns: string[] = [];
  try {
    netns = readdirSync('/run/netns').filter(has);
  } catch {
    netns = [];
  }
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n').filter(has).map((l) => l.split(':')[1]?.trim() ?? l);
  const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).split('\n').filter(has);
  return { netns, links, tables };
}

/** Runs `command` in network namespace `netns`; its stdout. */
export function inNetns(netns: string, command: string[]): string {
  return execFileSync('ip', ['netns', 'exec', netns, ...command], { encoding: 'utf8' });
}

/** Like {@link inNetns}, without blocking the event loop (for a command that talks to this process). */
export async function inNetnsAsync(netns: string, command: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('ip', ['netns', 'exec', netns, ...command], { encoding: 'utf8', timeout: 10_000 });
  return stdout;
}
