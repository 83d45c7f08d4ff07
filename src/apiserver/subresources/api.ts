/**
 * The `subresources.kubevirt.io/v1` API (KubeVirt's virt-api, in process):
 * routes `/apis/subresources.kubevirt.io/v1/namespaces/{ns}/{parent}/{name}/{op}`
 * to the lifecycle actions, the guest actions, the console log and the
 * console/VNC streams. Actions answer 202 with an empty body; every error
 * is a `Status`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ApiError, badRequest } from '../../api/errors.js';
import type { AgentDirectory } from '../../agent/handle.js';
import type { Logger } from '../../log/logger.js';
import { decodeBody, readBody } from '../body.js';
import type { ObjectStore } from '../object-store.js';
import type { ResourceRequestInfo } from '../request-info.js';
import type { ResourceRegistry } from '../resources.js';
import type { SubresourceContext } from './context.js';
import { subresourceGroup, subresourceVersion } from './discovery.js';
import { readConsoleLog, runGuestAction } from './guest.js';
import { applyLifecycle, decideRestart, decideStart, decideStop, migrateVm } from './lifecycle.js';
import { parseGuestActionOptions, parseMigrateOptions, parseRestartOptions, parseStartOptions, parseStopOptions } from './options.js';
import { StreamSessions } from './stream.js';
import { changeVmVolumes, changeVmiVolumes, parseAddVolumeOptions, parseRemoveVolumeOptions } from './volumes.js';

export interface SubresourceApiOptions {
  objects: ObjectStore;
  registry: ResourceRegistry;
  /** Where the node agents are; without it, guest actions and streams answer 503. */
  agents?: AgentDirectory;
  logger: Logger;
}

/** One request's operation, resolved from its path. */
type Operation =
  | { kind: 'lifecycle'; action: 'start' | 'stop' | 'restart' | 'migrate' }
  | { kind: 'guest'; action: 'pause' | 'unpause' | 'softreboot' | 'reset' | 'freeze' | 'unfreeze' }
  | { kind: 'consolelog' }
  | { kind: 'stream'; stream: 'console' | 'vnc' }
  | { kind: 'portforward'; port: number; on: 'vm' | 'vmi' }
  | { kind: 'volume'; action: 'addvolume' | 'removevolume'; on: 'vm' | 'vmi' };

interface Target {
  namespace: string;
  name: string;
  operation: Operation;
  path: string;
}

const guestOptionKinds = { pause: 'PauseOptions', unpause: 'UnpauseOptions', softreboot: 'SoftRebootOptions', reset: 'ResetOptions', freeze: 'FreezeUnfreezeTimeout', unfreeze: 'UnfreezeOptions' } as const;

/**
 * `portforward/PORT[/PROTOCOL]` as KubeVirt routes it; undefined for any
 * other subresource. Throws a 400 for a bad port or an unsupported protocol.
 */
function portForwardOf(op: string, on: 'vm' | 'vmi'): Operation | undefined {
  const [name, port, protocol, ...rest] = op.split('/');
  if (name !== 'portforward' || port === undefined || rest.length > 0) return undefined;
  const number = Number(port);
  if (!/^[0-9]{1,5}$/.test(port) || number < 1 || number > 65535) throw badRequest(`portforward needs a port from 1 to 65535, not "${port}"`);
  if (protocol !== undefined && protocol !== 'tcp') {
    throw badRequest(protocol === 'udp' ? 'UDP port forwarding is not supported: forward a TCP port' : `unknown portforward protocol "${protocol}": use tcp`);
  }
  return { kind: 'portforward', port: number, on };
}

function operationOf(parent: string, op: string): Operation | undefined {
  if (op.startsWith('portforward/') && (parent === 'virtualmachines' || parent === 'virtualmachineinstances')) return portForwardOf(op, parent === 'virtualmachines' ? 'vm' : 'vmi');
  if (parent === 'virtualmachines') {
    if (op === 'start' || op === 'stop' || op === 'restart' || op === 'migrate') return { kind: 'lifecycle', action: op };
    if (op === 'addvolume' || op === 'removevolume') return { kind: 'volume', action: op, on: 'vm' };
    return undefined;
  }
  if (parent !== 'virtualmachineinstances') return undefined;
  if (op === 'pause' || op === 'unpause' || op === 'softreboot' || op === 'reset' || op === 'freeze' || op === 'unfreeze') return { kind: 'guest', action: op };
  if (op === 'console' || op === 'vnc') return { kind: 'stream', stream: op };
  if (op === 'consolelog') return { kind: 'consolelog' };
  if (op === 'addvolume' || op === 'removevolume') return { kind: 'volume', action: op, on: 'vmi' };
  return undefined;
}

function methodFor(operation: Operation): 'GET' | 'PUT' {
  return operation.kind === 'lifecycle' || operation.kind === 'guest' || operation.kind === 'volume' ? 'PUT' : 'GET';
}

function assertNever(value: never): never {
  throw new Error(`unhandled subresource operation ${JSON.stringify(value)}`);
}

/** The optional options body: empty means defaults; otherwise JSON or YAML by content type. */
async function readOptions(req: IncomingMessage): Promise<unknown> {
  const body = await readBody(req);
  if (body.toString('utf8').trim() === '') return undefined;
  return decodeBody(body, req.headers['content-type']);
}

export class SubresourceApi {
  private readonly context: SubresourceContext;
  private readonly streams: StreamSessions;

  constructor(options: SubresourceApiOptions) {
    this.context = { objects: options.objects, registry: options.registry, agents: options.agents, logger: options.logger.child({ component: 'subresources' }) };
    this.streams = new StreamSessions(this.context);
  }

  /** True for requests this API serves (every resource path under `/apis/subresources.kubevirt.io/`). */
  serves(info: ResourceRequestInfo): boolean {
    return info.group === subresourceGroup;
  }

  /** Number of open console and VNC sessions. */
  get openStreams(): number {
    return this.streams.size;
  }

  async handle(info: ResourceRequestInfo, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = this.resolve(info);
    const method = req.method ?? 'GET';
    const op = target.operation;
    if (op.kind === 'stream') {
      throw new ApiError('BadRequest', `${target.path} is a WebSocket endpoint: connect with "Upgrade: websocket" and subprotocol plain.kubevirt.io (e.g. vireo ${op.stream} ${target.name})`);
    }
    if (op.kind === 'portforward') {
      throw new ApiError('BadRequest', `${target.path} is a WebSocket endpoint: connect with "Upgrade: websocket" and subprotocol plain.kubevirt.io (e.g. vireo port-forward ${op.on}/${target.name} ${op.port})`);
    }
    if (method !== methodFor(op)) {
      throw new ApiError('MethodNotAllowed', `${method} is not allowed on ${target.path}: use ${methodFor(op)}`);
    }
    const where = { namespace: target.namespace, name: target.name };
    switch (op.kind) {
      case 'lifecycle':
        await this.lifecycle(op.action, where, await readOptions(req));
        break;
      case 'guest':
        await runGuestAction(this.context, where, op.action, parseGuestActionOptions(guestOptionKinds[op.action], await readOptions(req)));
        break;
      case 'volume': {
        const body = await readOptions(req);
        const request = op.action === 'addvolume' ? parseAddVolumeOptions(body) : parseRemoveVolumeOptions(body);
        await (op.on === 'vm' ? changeVmVolumes(this.context, where, request) : changeVmiVolumes(this.context, where, request));
        break;
      }
      case 'consolelog': {
        const text = await readConsoleLog(this.context, where);
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      default:
        assertNever(op);
    }
    res.writeHead(202, { 'Content-Length': '0' });
    res.end();
  }

  /** Serves a WebSocket upgrade; throws an ApiError (answered before the upgrade) when it cannot. */
  async upgrade(info: ResourceRequestInfo, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const target = this.resolve(info);
    const op = target.operation;
    if (op.kind === 'portforward') {
      // A VM's port is its VMI's (same name).
      await this.streams.upgrade({ namespace: target.namespace, name: target.name, kind: 'portforward', port: op.port, path: target.path }, req, socket, head);
      return;
    }
    if (op.kind !== 'stream') {
      throw new ApiError('BadRequest', `${target.path} does not accept a protocol upgrade: only the console, vnc and portforward subresources are WebSockets`);
    }
    await this.streams.upgrade({ namespace: target.namespace, name: target.name, kind: op.stream, path: target.path }, req, socket, head);
  }

  /** Ends the open console and VNC sessions (server shutdown). */
  close(): void {
    this.streams.close();
  }

  private async lifecycle(action: 'start' | 'stop' | 'restart' | 'migrate', where: { namespace: string; name: string }, body: unknown): Promise<void> {
    switch (action) {
      case 'start': {
        const options = parseStartOptions(body);
        await applyLifecycle(this.context, { ...where, dryRun: options.dryRun }, (vm, vmi) => decideStart(vm, vmi, options));
        return;
      }
      case 'stop': {
        const options = parseStopOptions(body);
        await applyLifecycle(this.context, { ...where, dryRun: options.dryRun }, (vm, vmi) => decideStop(vm, vmi, options));
        return;
      }
      case 'restart': {
        const options = parseRestartOptions(body);
        await applyLifecycle(this.context, { ...where, dryRun: options.dryRun }, (vm, vmi) => decideRestart(vm, vmi, options));
        return;
      }
      case 'migrate':
        await migrateVm(this.context, where, parseMigrateOptions(body));
        return;
    }
  }

  private resolve(info: ResourceRequestInfo): Target {
    const path = `${info.resource}/${info.name ?? ''}/${info.subresource ?? ''}`;
    const notServed = (): ApiError =>
      new ApiError('NotFound', `the server could not find the requested resource: ${subresourceGroup}/${info.version} serves virtualmachines/{start,stop,restart,migrate,addvolume,removevolume,portforward/PORT} and virtualmachineinstances/{console,vnc,consolelog,pause,unpause,softreboot,reset,freeze,unfreeze,addvolume,removevolume,portforward/PORT}, not ${path}`, {
        details: { group: subresourceGroup, kind: info.resource },
      });
    if (info.version !== subresourceVersion || info.namespace === undefined || info.name === undefined || info.subresource === undefined) throw notServed();
    const operation = operationOf(info.resource, info.subresource);
    if (operation === undefined) throw notServed();
    return {
      namespace: info.namespace,
      name: info.name,
      operation,
      path: `/apis/${subresourceGroup}/${info.version}/namespaces/${info.namespace}/${info.resource}/${info.name}/${info.subresource}`,
    };
  }
}
