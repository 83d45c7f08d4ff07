/**
 * Makes sure the bridges holding this node's sandbox veths hand their
 * traffic to the `inet` hooks (br_netfilter), where the policy table and
 * conntrack see it. Set per bridge (`nf_call_iptables`,
 * `nf_call_ip6tables`), not with the namespace-wide
 * `bridge-nf-call-iptables` sysctl, so other bridges on the host are left
 * as they are. Without it every policy would silently let traffic through.
 */
import { execFile } from 'node:child_process';
import type { NftTarget } from './nft.js';

function ip(target: NftTarget, args: readonly string[]): Promise<string> {
  const argv = target.netns === undefined ? [...args] : ['-n', target.netns, ...args];
  return new Promise((resolve, reject) => {
    execFile('ip', argv, { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else reject(new Error(`ip ${argv.join(' ')} failed: ${stderr.trim() || err.message}`));
    });
  });
}

interface LinkDetails {
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: { nf_call_iptables?: number; nf_call_ip6tables?: number } };
}

function parseLinks(text: string): LinkDetails[] {
  const parsed: unknown = JSON.parse(text);
  return Array.isArray(parsed) ? (parsed as LinkDetails[]) : [];
}

/**
 * Enables br_netfilter on the bridges that `interfaces` are ports of;
 * interfaces that do not exist (yet) are skipped. Returns the bridges it
 * switched on.
 */
export async function ensureBridgeNetfilter(target: NftTarget, interfaces: readonly string[]): Promise<string[]> {
  const bridges = new Set<string>();
  for (const name of new Set(interfaces)) {
    if (name === '') continue;
    const links = await ip(target, ['-j', 'link', 'show', 'dev', name]).then(parseLinks, () => []);
    const master = links[0]?.master;
    if (master !== undefined) bridges.add(master);
  }
  const switched: string[] = [];
  for (const bridge of bridges) {
    const data = parseLinks(await ip(target, ['-j', '-d', 'link', 'show', 'dev', bridge]))[0]?.linkinfo;
    if (data?.info_kind !== 'bridge') continue;
    if (data.info_data?.nf_call_iptables === 1 && data.info_data.nf_call_ip6tables === 1) continue;
    await ip(target, ['link', 'set', 'dev', bridge, 'type', 'bridge', 'nf_call_iptables', '1', 'nf_call_ip6tables', '1']);
    switched.push(bridge);
  }
  return switched;
}
