/**
 * CNI network configurations as libcni reads them: a single plugin config
 * or a config list (`plugins: []`), checked once, then handed to each
 * plugin with the list's `name` and `cniVersion` injected, the previous
 * plugin's result as `prevResult`, and the `runtimeConfig` its declared
 * capabilities ask for. Also Multus' fallback for a NetworkAttachmentDefinition
 * without `spec.config`: the conf file in its conf dir whose `name` matches.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isPlainObject } from '../../api/object.js';
import { CniError } from './errors.js';
import { supportedVersions, versionAtLeast } from './version.js';

/** A network as the runtime runs it: the plugins in order, each config as written. */
export interface NetworkConfigList {
  name: string;
  cniVersion: string;
  /** `disableCheck: true` in a config list: CHECK is skipped, as libcni does. */
  disableCheck: boolean;
  /** Each plugin's own config object; `type` is checked to be a plain file name. */
  plugins: PluginConfig[];
}

export interface PluginConfig {
  type: string;
  config: Record<string, unknown>;
}

/** Values a runtime passes through `runtimeConfig` to plugins that declare the capability. */
export interface RuntimeValues {
  /** `mac`: the MAC address the interface should have (the `tuning` plugin sets it). */
  mac?: string;
}

const pluginTypeRe = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Parses `text` (a CNI config or config list). `source` names it in errors
 * (e.g. `network-attachment-definition default/br10`); `defaultName` is
 * the network name when the config has none (Multus uses the NAD's name).
 */
export function parseNetworkConfig(text: string, options: { source: string; defaultName?: string }): NetworkConfigList {
  const { source } = options;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CniError('InvalidConfig', `${source} has a CNI config that is not valid JSON (${(err as Error).message}): fix the JSON`, { network: source, cause: err });
  }
  if (!isPlainObject(parsed)) throw invalidConfig(source, 'the CNI config is not a JSON object');

  const name = optionalString(parsed, 'name', source) ?? options.defaultName;
  if (name === undefined || name === '') throw invalidConfig(source, 'the CNI config has no "name"');
  const cniVersion = optionalString(parsed, 'cniVersion', source);
  if (cniVersion === undefined) throw invalidConfig(source, `the CNI config has no "cniVersion" (one of ${supportedVersions.join(', ')})`);
  if (!supportedVersions.includes(cniVersion)) {
    throw invalidConfig(source, `cniVersion "${cniVersion}" is not supported: use one of ${supportedVersions.join(', ')}`);
  }

  const list = parsed.plugins;
  if (list === undefined) {
    // A single plugin config is a list of one, as libcni's ConfListFromConf makes it.
    return { name, cniVersion, disableCheck: false, plugins: [pluginConfig(parsed, source, 'the CNI config')] };
  }
  if (!Array.isArray(list) || list.length === 0) throw invalidConfig(source, '"plugins" must be a non-empty array of plugin configs');
  const disableCheck = parsed.disableCheck;
  if (disableCheck !== undefined && typeof disableCheck !== 'boolean') throw invalidConfig(source, '"disableCheck" must be true or false');
  const plugins = (list as unknown[]).map((plugin, index) => {
    if (!isPlainObject(plugin)) throw invalidConfig(source, `plugins[${index}] is not a JSON object`);
    return pluginConfig(plugin, source, `plugins[${index}]`);
  });
  return { name, cniVersion, disableCheck: disableCheck ?? false, plugins };
}

function pluginConfig(config: Record<string, unknown>, source: string, where: string): PluginConfig {
  const type = config.type;
  if (typeof type !== 'string' || type === '') throw invalidConfig(source, `${where} has no plugin "type" (e.g. "bridge")`);
  // The type is a binary name looked up in the CNI path: no paths, no tricks.
  if (!pluginTypeRe.test(type)) throw invalidConfig(source, `${where} has plugin type "${type}", which is not a plugin binary name`);
  return { type, config };
}

function optionalString(config: Record<string, unknown>, key: string, source: string): string | undefined {
  const value = config[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalidConfig(source, `"${key}" must be a string`);
  return value;
}

function invalidConfig(source: string, why: string): CniError {
  return new CniError('InvalidConfig', `${source} has an invalid CNI config: ${why}`, { network: source });
}

/**
 * The JSON a plugin reads on stdin: its own config with the list's name and
 * version, `prevResult` when there is one (chained ADD; CHECK and DEL from
 * 0.4.0 on), and `runtimeConfig` for the capabilities it declares.
 */
export function pluginInput(list: NetworkConfigList, plugin: PluginConfig, options: { prevResult?: unknown; runtime?: RuntimeValues } = {}): Record<string, unknown> {
  const input: Record<string, unknown> = { ...plugin.config, name: list.name, cniVersion: list.cniVersion };
  delete input.prevResult;
  if (options.prevResult !== undefined) input.prevResult = options.prevResult;
  const runtimeConfig = runtimeConfigFor(plugin, options.runtime ?? {});
  if (runtimeConfig !== undefined) input.runtimeConfig = runtimeConfig;
  else delete input.runtimeConfig;
  return input;
}

function runtimeConfigFor(plugin: PluginConfig, runtime: RuntimeValues): Record<string, unknown> | undefined {
  const capabilities = plugin.config.capabilities;
  if (!isPlainObject(capabilities)) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(runtime)) {
    if (value !== undefined && capabilities[key] === true) out[key] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** True when the list's version has CHECK (0.4.0 and later). */
export function supportsCheck(list: NetworkConfigList): boolean {
  return versionAtLeast(list.cniVersion, '0.4.0');
}

/**
 * Multus' fallback for a NAD without `spec.config`: the `.conf`,
 * `.conflist` or `.json` file in `confDir` whose `name` is `name` (files in
 * name order; the first match wins). Undefined when none matches.
 */
export async function findConfFile(confDir: string, name: string): Promise<NetworkConfigList | undefined> {
  let files: string[];
  try {
    files = (await readdir(confDir)).filter((f) => /\.(conf|conflist|json)$/.test(f)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  for (const file of files) {
    const path = join(confDir, file);
    const text = await readFile(path, 'utf8');
    let declared: unknown;
    try {
      declared = (JSON.parse(text) as Record<string, unknown> | null)?.name;
    } catch {
      continue; // Multus skips files it cannot read, and so do we: another file may match.
    }
    if (declared === name) return parseNetworkConfig(text, { source: `CNI conf file ${path}` });
  }
  return undefined;
}
