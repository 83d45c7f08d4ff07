/**
 * The cluster DNS of `vireo server`: answers `ClusterZone`'s names over UDP
 * and TCP (RFC 1035 framing, RFC 7766 for several queries on one
 * connection) on one address and port. Its data are informers' caches of
 * Services and EndpointSlices, so a lookup reads memory only and a new
 * Service is answered as soon as its watch event arrives.
 */
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { isIPv6 } from 'node:net';
import type { KObject } from '../../api/object.js';
import { Informer, resources } from '../../client/index.js';
import type { Client } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { ClusterZone } from './cluster-zone.js';
import type { ClusterZoneOptions } from './cluster-zone.js';
import { DnsFormatError, encodeResponse, parseQuery, rcodes } from './wire.js';

const serviceNameLabel = 'kubernetes.io/service-name';
/** The classic UDP limit, for clients that did not announce a larger EDNS buffer. */
const plainUdpSize = 512;
const maxUdpSize = 4096;
/** A TCP connection idle this long is closed (RFC 7766 suggests tens of seconds). */
const tcpIdleMs = 30_000;

export interface ClusterDnsOptions extends ClusterZoneOptions {
  host: string;
  /** 0 picks a free port (the same for UDP and TCP). */
  port: number;
}

export class ClusterDns {
  readonly zone: ClusterZone;
  private readonly services: Informer;
  private readonly slices: Informer;
  /** `namespace/service` → keys of its EndpointSlices. */
  private readonly slicesByService = new Map<string, Set<string>>();
  private readonly sliceOwner = new Map<string, string>();
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  private readonly connections = new Set<Socket>();
  private bound: { address: string; port: number } | undefined;
  private stopped = false;

  constructor(
    client: Client,
    private readonly logger: Logger,
    private readonly options: ClusterDnsOptions,
  ) {
    this.services = new Informer(client, resources.services, logger);
    this.slices = new Informer(client, resources.endpointSlices, logger);
    this.zone = new ClusterZone(
      {
        service: (namespace, name) => this.services.get(`${namespace}/${name}`),
        services: () => this.services.list(),
        slicesOf: (namespace, service) => [...(this.slicesByService.get(`${namespace}/${service}`) ?? [])].map((key) => this.slices.get(key)).filter((s): s is KObject => s !== undefined),
      },
      options,
    );
    this.services.onChange(() => { this.zone.invalidate(); });
    this.slices.onChange((key) => { this.indexSlice(key); });
  }

  /** Where it listens, once started. */
  get address(): { address: string; port: number } {
    if (this.bound === undefined) throw new Error('the cluster DNS is not started');
    return this.bound;
  }

  /** Fills the caches, then listens; rejects when the address cannot be bound. */
  async start(): Promise<void> {
    await Promise.all([this.services.start(), this.slices.start()]);
    await this.listen();
    this.logger.info('cluster DNS listening', { address: this.bound?.address, port: this.bound?.port, domain: this.zone.domain });
  }

  /** Stops listening and watching; safe to call twice, and while `start` is still under way (it then ends without listening). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const socket of this.connections) socket.destroy();
    const { udp, tcp } = this;
    this.udp = undefined;
    this.tcp = undefined;
    await Promise.all([closeUdp(udp), closeTcp(tcp), this.services.stop(), this.slices.stop()]);
  }

  private indexSlice(key: string): void {
    this.zone.invalidate();
    const slice = this.slices.get(key);
    const before = this.sliceOwner.get(key);
    const service = slice?.metadata.labels?.[serviceNameLabel];
    const after = slice === undefined || service === undefined ? undefined : `${slice.metadata.namespace ?? ''}/${service}`;
    if (before === after) return;
    if (before !== undefined) this.slicesByService.get(before)?.delete(key);
    if (after === undefined) {
      this.sliceOwner.delete(key);
      return;
    }
    this.sliceOwner.set(key, after);
    const set = this.slicesByService.get(after) ?? new Set<string>();
    set.add(key);
    this.slicesByService.set(after, set);
  }

  private async listen(): Promise<void> {
    // Port 0: the kernel picks a UDP port; TCP then takes the same one (rarely taken: try a few).
    for (let attempt = 0; ; attempt++) {
      const udp = await this.bindUdp();
      const port = udp.address().port;
      try {
        const tcp = await this.bindTcp(port);
        if (this.stopped) {
          await Promise.all([closeUdp(udp), closeTcp(tcp)]);
          throw new Error('the cluster DNS was stopped while it started');
        }
        this.tcp = tcp;
        this.udp = udp;
        this.bound = { address: udp.address().address, port };
        return;
      } catch (err) {
        await new Promise<void>((resolve) => { udp.close(() => { resolve(); }); });
        if (this.options.port !== 0 || attempt >= 5) throw err;
      }
    }
  }

  private bindUdp(): Promise<UdpSocket> {
    return new Promise((resolve, reject) => {
      const socket = createSocket(isIPv6(this.options.host) ? 'udp6' : 'udp4');
      socket.once('error', reject);
      socket.bind(this.options.port, this.options.host, () => {
        socket.off('error', reject);
        socket.on('error', (err) => { this.logger.warn('cluster DNS UDP socket error', { error: err.message }); });
        socket.on('message', (message, remote) => {
          const reply = this.reply(message, 'udp');
          if (reply !== undefined) socket.send(reply, remote.port, remote.address);
        });
        resolve(socket);
      });
    });
  }

  private bindTcp(port: number): Promise<Server> {
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => { this.serveTcp(socket); });
      server.once('error', reject);
      server.listen(port, this.options.host, () => {
        server.off('error', reject);
        resolve(server);
      });
    });
  }

  private serveTcp(socket: Socket): void {
    this.connections.add(socket);
    socket.setTimeout(tcpIdleMs, () => { socket.destroy(); });
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) break;
        const reply = this.reply(pending.subarray(2, 2 + length), 'tcp');
        pending = pending.subarray(2 + length);
        if (reply === undefined) {
          socket.destroy();
          return;
        }
        const framed = Buffer.alloc(2 + reply.length);
        framed.writeUInt16BE(reply.length, 0);
        reply.copy(framed, 2);
        socket.write(framed);
      }
    });
    socket.on('error', () => { socket.destroy(); });
    socket.on('close', () => { this.connections.delete(socket); });
  }

  /** The reply to one message; undefined when it deserves none (not even a header to answer). */
  private reply(message: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
    let query;
    try {
      query = parseQuery(message);
    } catch (err) {
      if (err instanceof DnsFormatError && err.id !== undefined) {
        return encodeResponse({ id: err.id, opcode: 0, recursionDesired: false, question: undefined }, { rcode: rcodes.FORMERR, authoritative: false, answers: [], authority: [], additional: [] });
      }
      return undefined;
    }
    if (query.opcode !== 0) return encodeResponse(query, { rcode: rcodes.NOTIMP, authoritative: false, answers: [], authority: [], additional: [] });
    let response;
    try {
      response = this.zone.answer(query.question);
    } catch (err) {
      this.logger.error('cluster DNS failed to answer', { name: query.question.name, error: err instanceof Error ? err.message : String(err) });
      response = { rcode: rcodes.SERVFAIL, authoritative: false, answers: [], authority: [], additional: [] };
    }
    const limit = transport === 'tcp' ? 65535 : Math.min(maxUdpSize, Math.max(plainUdpSize, query.ednsSize ?? plainUdpSize));
    return encodeResponse(query, response, limit);
  }
}

function closeUdp(socket: UdpSocket | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (socket === undefined) { resolve(); return; }
    try {
      socket.close(() => { resolve(); });
    } catch {
      // Already closed (ERR_SOCKET_DGRAM_NOT_RUNNING): nothing is left to release.
      resolve();
    }
  });
}

function closeTcp(server: Server | undefined): Promise<void> {
  return new Promise((resolve) => { if (server === undefined) resolve(); else server.close(() => { resolve(); }); });
}
