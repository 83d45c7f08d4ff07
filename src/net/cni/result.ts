/**
 * What plugins write on stdout, checked before it is trusted: the CNI
 * result (0.3.0 to 1.0.0: `interfaces`, `ips`, `routes`, `dns`) and the
 * spec's error report (`{code, msg, details}`). The raw JSON is kept next to
 * the typed view, because the next plugin in a chain, the cache and DEL need
 * it exactly as the plugin wrote it (fields we do not read included).
 */
import { isPlainObject } from '../../api/object.js';
import type { PluginErrorReport } from './errors.js';

export interface ResultInterface {
  name: string;
  mac?: string;
  mtu?: number;
  /** The netns path for an interface inside the sandbox; absent on the host's side. */
  sandbox?: string;
}

export interface ResultIp {
  /** Index into `interfaces`, when the plugin says which interface the address is on. */
  interface?: number;
  /** CIDR notation: `10.1.0.5/24`. */
  address: string;
  gateway?: string;
}

export interface ResultRoute {
  dst: string;
  gw?: string;
}

export interface ResultDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** A CNI result: the typed view, and the plugin's JSON as written. */
export interface CniResult {
  cniVersion: string;
  interfaces: ResultInterface[];
  ips: ResultIp[];
  routes: ResultRoute[];
  dns: ResultDns;
  raw: Record<string, unknown>;
}

/** A value that is not what the spec says a plugin writes; `path` says where. */
export class ResultShapeError extends Error {
  constructor(path: string, expected: string) {
    super(`${path}: expected ${expected}`);
    this.name = 'ResultShapeError';
  }
}

/** Checks a plugin's parsed stdout as a CNI result; unknown fields are kept in `raw`, not read. */
export function decodeResult(value: unknown): CniResult {
  const raw = recordOf(value, 'result');
  const cniVersion = optionalOf(raw, 'cniVersion', 'result', stringOf) ?? '';
  const interfaces = optionalOf(raw, 'interfaces', 'result', (v, p) => arrayOf(v, p, decodeInterface)) ?? [];
  const ips = optionalOf(raw, 'ips', 'result', (v, p) => arrayOf(v, p, decodeIp)) ?? [];
  const routes = optionalOf(raw, 'routes', 'result', (v, p) => arrayOf(v, p, decodeRoute)) ?? [];
  const dns = optionalOf(raw, 'dns', 'result', decodeDns) ?? {};
  ips.forEach((ip, i) => {
    if (ip.interface !== undefined && (ip.interface < 0 || ip.interface >= interfaces.length)) {
      throw new ResultShapeError(`result.ips[${i}].interface`, `an index into interfaces (0…${interfaces.length - 1})`);
    }
  });
  return { cniVersion, interfaces, ips, routes, dns, raw };
}

/** The spec's error report, or undefined when `value` is not one. */
export function decodeErrorReport(value: unknown): PluginErrorReport | undefined {
  if (!isPlainObject(value) || typeof value.code !== 'number' || typeof value.msg !== 'string') return undefined;
  const report: PluginErrorReport = { code: value.code, msg: value.msg };
  if (typeof value.details === 'string' && value.details !== '') report.details = value.details;
  if (typeof value.cniVersion === 'string') report.cniVersion = value.cniVersion;
  return report;
}

/** The `supportedVersions` a plugin answers VERSION with. */
export function decodeVersionInfo(value: unknown): string[] {
  const raw = recordOf(value, 'version');
  return arrayOf(raw.supportedVersions, 'version.supportedVersions', stringOf);
}

function decodeInterface(value: unknown, path: string): ResultInterface {
  const raw = recordOf(value, path);
  const out: ResultInterface = { name: stringOf(raw.name, `${path}.name`) };
  const mac = optionalOf(raw, 'mac', path, stringOf);
  if (mac !== undefined) out.mac = mac;
  const mtu = optionalOf(raw, 'mtu', path, integerOf);
  if (mtu !== undefined) out.mtu = mtu;
  const sandbox = optionalOf(raw, 'sandbox', path, stringOf);
  if (sandbox !== undefined && sandbox !== '') out.sandbox = sandbox;
  return out;
}

function decodeIp(value: unknown, path: string): ResultIp {
  const raw = recordOf(value, path);
  const out: ResultIp = { address: stringOf(raw.address, `${path}.address`) };
  const index = optionalOf(raw, 'interface', path, integerOf);
  if (index !== undefined) out.interface = index;
  const gateway = optionalOf(raw, 'gateway', path, stringOf);
  if (gateway !== undefined) out.gateway = gateway;
  return out;
}

function decodeRoute(value: unknown, path: string): ResultRoute {
  const raw = recordOf(value, path);
  const out: ResultRoute = { dst: stringOf(raw.dst, `${path}.dst`) };
  const gw = optionalOf(raw, 'gw', path, stringOf);
  if (gw !== undefined) out.gw = gw;
  return out;
}

function decodeDns(value: unknown, path: string): ResultDns {
  const raw = recordOf(value, path);
  const out: ResultDns = {};
  const strings = (v: unknown, p: string): string[] => arrayOf(v, p, stringOf);
  const nameservers = optionalOf(raw, 'nameservers', path, strings);
  if (nameservers !== undefined) out.nameservers = nameservers;
  const domain = optionalOf(raw, 'domain', path, stringOf);
  if (domain !== undefined) out.domain = domain;
  const search = optionalOf(raw, 'search', path, strings);
  if (search !== undefined) out.search = search;
  const options = optionalOf(raw, 'options', path, strings);
  if (options !== undefined) out.options = options;
  return out;
}

function recordOf(value: unknown, path: string): Record<string, unknown> {
  if (!isPlainObject(value)) throw new ResultShapeError(path, 'an object');
  return value;
}

function stringOf(value: unknown, path: string): string {
  if (typeof value !== 'string') throw new ResultShapeError(path, 'a string');
  return value;
}

function integerOf(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new ResultShapeError(path, 'an integer');
  return value;
}

function arrayOf<T>(value: unknown, path: string, item: (v: unknown, p: string) => T): T[] {
  if (!Array.isArray(value)) throw new ResultShapeError(path, 'an array');
  return (value as unknown[]).map((element, index) => item(element, `${path}[${index}]`));
}

/** `record[key]` decoded, or undefined when absent or null (Go plugins write `null` for empty slices). */
function optionalOf<T>(record: Record<string, unknown>, key: string, path: string, decode: (v: unknown, p: string) => T): T | undefined {
  const value = record[key];
  return value === undefined || value === null ? undefined : decode(value, `${path}.${key}`);
}
