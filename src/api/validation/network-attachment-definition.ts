/**
 * NetworkAttachmentDefinition (`k8s.cni.cncf.io/v1`) admission, as Multus'
 * net-attach-def admission webhook makes it: a `spec.config`, when given,
 * is a CNI configuration in JSON, a single plugin (`type`) or a list
 * (`plugins`, each with a `type`), with its `cniVersion`. An empty config
 * is allowed: Multus then reads the configuration file of the same name.
 */
import type { FieldError } from '../errors.js';
import type { KObject } from '../object.js';
import { isPlainObject } from '../object.js';
import { stringAt } from '../kinds/read.js';
import { invalid, required } from './field-error.js';

const field = 'spec.config';

export function validateNetworkAttachmentDefinition(nad: KObject): FieldError[] {
  const text = stringAt(nad, 'spec', 'config') ?? '';
  if (text.trim() === '') return [];
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return [invalid(field, `invalid CNI configuration: it is not valid JSON (${why}); write spec.config as a JSON object such as {"cniVersion": "1.0.0", "type": "bridge", …}`)];
  }
  if (!isPlainObject(config)) return [invalid(field, 'invalid CNI configuration: it must be a JSON object with cniVersion and type (or plugins)')];
  const errors: FieldError[] = [];
  if (typeof config.cniVersion !== 'string' || config.cniVersion === '') {
    errors.push(required(field, 'invalid CNI configuration: cniVersion is missing: set it to the CNI spec version of the plugins, e.g. "1.0.0"'));
  }
  if (config.plugins !== undefined) {
    if (!Array.isArray(config.plugins) || config.plugins.length === 0) {
      errors.push(invalid(field, 'invalid CNI configuration: plugins must be a non-empty list of plugin configurations'));
    } else {
      config.plugins.forEach((plugin: unknown, i: number) => {
        if (!isPlainObject(plugin) || typeof plugin.type !== 'string' || plugin.type === '') {
          errors.push(required(field, `invalid CNI configuration: plugins[${i}] has no type: name the CNI plugin binary to run, e.g. "bridge"`));
        }
      });
    }
  } else if (typeof config.type !== 'string' || config.type === '') {
    errors.push(required(field, 'invalid CNI configuration: it has neither type nor plugins: name the CNI plugin to run ("type": "bridge") or list them in "plugins"'));
  }
  return errors;
}
