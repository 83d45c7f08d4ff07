/**
 * The host side of the Multus e2e files: two test bridges that the NADs'
 * `bridge` plugin makes in the host namespace, a host-local data directory,
 * a namespace of the test's own plugged into the first bridge, and what
 * shows that DEL released everything. Names carry a random suffix, so the
 * files never collide and their leftovers are found by it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { networkNames } from '../../src/net/pod/names.js';
import { hostNetworkState } from './support.js';

export class MultusLab {
  readonly suffix = randomBytes(3).toString('hex');
  readonly bridges: readonly [string, string];
  readonly peerNetns: string;
  private readonly peerVeth: string;
  readonly ipamDir: string;

  /** `tag`: two letters in the link names (`v<tag>a…`); `name`: in the namespace's and data directory's names. */
  constructor(tag: string, name: string) {
    this.bridges = [`v${tag}a${this.suffix}`, `v${tag}b${this.suffix}`];
    this.peerNetns = `vireo-${name}-test-${this.suffix}`;
    this.peerVeth = `v${tag}p${this.suffix}`;
    this.ipamDir = mkdtempSync(join(tmpdir(), `vireo-${name}-ipam-`));
  }

  /** A NAD of Debian's `bridge` plugin on bridge `index`, with host-local IPAM (`ipam` adds ranges, routes…). */
  nad(name: string, index: 0 | 1, ipam: Record<string, unknown>): Record<string, unknown> {
    return {
      apiVersion: 'k8s.cni.cncf.io/v1',
      kind: 'NetworkAttachmentDefinition',
      metadata: { name, namespace: 'default' },
      spec: { config: JSON.stringify({ cniVersion: '1.0.0', type: 'bridge', bridge: this.bridges[index], ipam: { type: 'host-local', dataDir: this.ipamDir, ...ipam } }) },
    };
  }

  /** Plugs the peer namespace into the first bridge with `address`/24. */
  plugPeer(address: string): void {
    execFileSync('ip', ['netns', 'add', this.peerNetns]);
    execFileSync('ip', ['link', 'add', this.peerVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.peerNetns]);
    execFileSync('ip', ['link', 'set', this.peerVeth, 'master', this.bridges[0], 'up']);
    execFileSync('ip', ['-n', this.peerNetns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
    execFileSync('ip', ['-n', this.peerNetns, 'link', 'set', 'eth0', 'up']);
  }

  unplugPeer(): void {
    execFileSync('ip', ['netns', 'del', this.peerNetns]);
  }

  /** Host-local's lease files (one per address) under the NADs' data dir. */
  leaseFiles(): string[] {
    if (!existsSync(this.ipamDir)) return [];
    return readdirSync(this.ipamDir).flatMap((network) => readdirSync(join(this.ipamDir, network)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)));
  }

  /** The ports of a test bridge, as `ip -o link` lists them. */
  bridgePorts(bridge: string): string {
    return execFileSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' }).trim();
  }

  /** Checks that DEL ran for every NAD: leases released, the agent's result cache empty, no port left on the bridges. */
  assertReleased(agentDir: string): void {
    assert.deepEqual(this.leaseFiles(), []);
    const cache = join(agentDir, 'cni', 'results');
    assert.deepEqual(existsSync(cache) ? readdirSync(cache) : [], []);
    for (const bridge of this.bridges) assert.equal(this.bridgePorts(bridge), '', `${bridge} has no ports left`);
  }

  /** Removes the bridges, the peer and the data dir, then checks the host holds nothing of the test or of the agent's pod network. */
  close(agentDir: string): void {
    for (const link of [this.peerVeth, ...this.bridges]) if (existsSync(`/sys/class/net/${link}`)) execFileSync('ip', ['link', 'del', link]);
    if (existsSync(`/run/netns/${this.peerNetns}`)) execFileSync('ip', ['netns', 'del', this.peerNetns]);
    rmSync(this.ipamDir, { recursive: true, force: true });
    const names = networkNames(agentDir);
    assert.deepEqual(hostNetworkState([names.bridge, names.table, names.netnsPrefix, this.suffix]), { netns: [], links: [], tables: [] }, 'the test left network state behind');
  }
}

/** The VMI sandboxes' directories left in an agent's data dir. */
export function leftInSandboxes(agentDir: string): string[] {
  const sandboxes = join(agentDir, 'network', 'sandboxes');
  return existsSync(sandboxes) ? readdirSync(sandboxes) : [];
}
