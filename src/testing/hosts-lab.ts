/**
 * Several "hosts" on one machine for the many-host tests: each host is a
 * network namespace with one interface, `eth0`, and its own IPv4 address
 * on a test subnet; their veth peers are ports of one bridge the lab makes
 * in the root namespace, which also holds the subnet's first address so
 * that the test process can reach every host (and nothing else is routed:
 * the hosts have no default route). A host can be cut off (its bridge port
 * down), reconnected, or killed (every process in its namespace gets
 * SIGKILL). Processes enter a host with {@link HostsLab.command}: only the
 * network namespace changes (nsenter), never the mount namespace, so that
 * cgroups and files look the same as outside. `destroy()` kills what runs
 * in the hosts and removes the namespaces and the bridge; whatever a host
 * made in its namespace (bridges, nftables tables, routes) goes with it.
 */
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';

function run(file: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 20_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else reject(new Error(`${file} ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
    });
  });
}

/** One host of the lab. */
export interface LabHost {
  /** host-0, host-1, … (also good as a node name). */
  readonly name: string;
  /** Its network namespace (under /run/netns). */
  readonly netns: string;
  /** Its IPv4 address on the lab subnet. */
  readonly address: string;
  /** Its veth's peer: a port of the lab bridge, in the root namespace. */
  readonly bridgePort: string;
}

export class HostsLab {
  private constructor(
    /** The bridge in the root namespace joining the hosts. */
    readonly bridge: string,
    /** The root namespace's address on the lab subnet (the test process's). */
    readonly gateway: string,
    readonly hosts: readonly LabHost[],
  ) {}

  /**
   * Makes `count` hosts on a fresh /24 out of 10.250.0.0/15 whose third
   * byte is random (two labs side by side almost never share one; `ip`
   * refuses a bridge address already in use, and then this throws).
   */
  static async create(count: number): Promise<HostsLab> {
    if (count < 1 || count > 200) throw new Error(`a lab has 1 to 200 hosts, not ${count}`);
    const tag = `${process.pid.toString(36).slice(-3)}${randomInt(1296).toString(36)}`;
    const subnet = `10.${250 + randomInt(2)}.${randomInt(256)}`;
    const bridge = `vh${tag}`;
    const hosts: LabHost[] = Array.from({ length: count }, (_, i) => ({ name: `host-${i}`, netns: `vh${tag}-${i}`, address: `${subnet}.${10 + i}`, bridgePort: `vh${tag}h${i}` }));
    const lab = new HostsLab(bridge, `${subnet}.1`, hosts);
    try {
      await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
      await run('ip', ['addr', 'add', `${lab.gateway}/24`, 'dev', bridge]);
      await run('ip', ['link', 'set', bridge, 'up']);
      for (const host of hosts) {
        await run('ip', ['netns', 'add', host.netns]);
        await run('ip', ['link', 'add', host.bridgePort, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.netns]);
        await run('ip', ['link', 'set', host.bridgePort, 'master', bridge, 'up']);
        await lab.exec(host, 'ip', 'addr', 'add', `${host.address}/24`, 'dev', 'eth0');
        await lab.exec(host, 'ip', 'link', 'set', 'eth0', 'up');
        await lab.exec(host, 'ip', 'link', 'set', 'lo', 'up');
      }
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  /** `file args…` inside `host`'s network namespace; resolves with its stdout. */
  exec(host: LabHost, file: string, ...args: string[]): Promise<string> {
    return run('nsenter', [`--net=/run/netns/${host.netns}`, file, ...args]);
  }

  /** The argv prefix that runs a command in `host`'s network namespace (nsenter execs it, so the child's pid is the command's). */
  command(host: LabHost): string[] {
    return ['nsenter', `--net=/run/netns/${host.netns}`];
  }

  /** Cuts `host` off the network: its bridge port goes down (its own link stays up, as when a switch port or cable fails). */
  async cut(host: LabHost): Promise<void> {
    await run('ip', ['link', 'set', host.bridgePort, 'down']);
  }

  /** Undoes {@link cut}. */
  async reconnect(host: LabHost): Promise<void> {
    await run('ip', ['link', 'set', host.bridgePort, 'up']);
  }

  /** Pids of the processes in `host`'s namespace. */
  async pids(host: LabHost): Promise<number[]> {
    const out = await run('ip', ['netns', 'pids', host.netns]).catch(() => '');
    return out.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number);
  }

  /** Kills the host as a power cut would: SIGKILL to every process in its namespace (agent, QEMUs, dnsmasq…), until none is left. */
  async kill(host: LabHost): Promise<void> {
    for (let round = 0; round < 50; round++) {
      const pids = await this.pids(host);
      if (pids.length === 0) return;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`host ${host.name} (${host.netns}) still has processes after 5 s of SIGKILL: ${(await this.pids(host)).join(' ')}`);
  }

  /** Kills every host and removes the namespaces and the bridge. Safe to call twice and after a failed create. */
  async destroy(): Promise<void> {
    for (const host of this.hosts) {
      await this.kill(host).catch(() => undefined);
      await run('ip', ['netns', 'del', host.netns]).catch(() => undefined);
      await run('ip', ['link', 'del', host.bridgePort]).catch(() => undefined);
    }
    await run('ip', ['link', 'del', this.bridge]).catch(() => undefined);
  }
}
