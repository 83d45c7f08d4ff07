/**
 * Name and label syntax exactly as Kubernetes validates it
 * (`k8s.io/apimachinery/pkg/api/validate/content`, `pkg/api/validation`):
 * the same rules, the same length limits and, because clients and tests
 * match on them, the same message texts.
 */
import { randomInt } from 'node:crypto';
import type { FieldError } from './errors.js';
import type { ObjectMeta } from './object.js';

export const dns1123LabelMaxLength = 63;
export const dns1123SubdomainMaxLength = 253;
export const labelValueMaxLength = 63;
const labelKeyNameMaxLength = 63;

const dns1123LabelFmt = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const dns1123SubdomainFmt = `${dns1123LabelFmt}(\\.${dns1123LabelFmt})*`;
const dns1035LabelFmt = '[a-z]([-a-z0-9]*[a-z0-9])?';
const labelKeyFmt = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const labelValueFmt = `(${labelKeyFmt})?`;

const dns1123LabelRe = new RegExp(`^${dns1123LabelFmt}$`);
const dns1123SubdomainRe = new RegExp(`^${dns1123SubdomainFmt}$`);
const dns1035LabelRe = new RegExp(`^${dns1035LabelFmt}$`);
const labelKeyRe = new RegExp(`^${labelKeyFmt}$`);
const labelValueRe = new RegExp(`^${labelValueFmt}$`);

const dns1123LabelMsg =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const dns1123SubdomainMsg =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const dns1035LabelMsg =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const labelKeyMsg = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const labelValueMsg =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/** Kubernetes' `RegexError`: the rule, examples, and the regex itself. */
export function regexError(message: string, regex: string, ...examples: string[]): string {
  if (examples.length === 0) return `${message} (regex used for validation is '${regex}')`;
  return `${message} (e.g. ${examples.map((e) => `'${e}', `).join(' or ')}regex used for validation is '${regex}')`;
}

/** Kubernetes' `MaxLenError`. */
export function maxLenError(length: number): string {
  return `must be no more than ${length} bytes`;
}

function byteLength(value: string): number {
  return Buffer.byteLength(value, 'utf8');
}

/** Problems with `value` as an RFC 1123 label (namespace names, most DNS-ish fields); empty when valid. */
export function isDNS1123Label(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > dns1123LabelMaxLength) errs.push(maxLenError(dns1123LabelMaxLength));
  if (!dns1123LabelRe.test(value)) {
    // A valid subdomain of acceptable length can only have failed on its dots.
    if (dns1123SubdomainRe.test(value)) errs.push('must not contain dots');
    else errs.push(regexError(dns1123LabelMsg, dns1123LabelFmt, 'my-name', '123-abc'));
  }
  return errs;
}

/** Problems with `value` as an RFC 1123 subdomain (most object names); empty when valid. */
export function isDNS1123Subdomain(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > dns1123SubdomainMaxLength) errs.push(maxLenError(dns1123SubdomainMaxLength));
  if (!dns1123SubdomainRe.test(value)) errs.push(regexError(dns1123SubdomainMsg, dns1123SubdomainFmt, 'example.com'));
  return errs;
}

/** Problems with `value` as an RFC 1035 label (Service names); empty when valid. */
export function isDNS1035Label(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > dns1123LabelMaxLength) errs.push(maxLenError(dns1123LabelMaxLength));
  if (!dns1035LabelRe.test(value)) errs.push(regexError(dns1035LabelMsg, dns1035LabelFmt, 'my-name', 'abc-123'));
  return errs;
}

/**
 * Problems with `value` as a label key / qualified name: an optional DNS
 * subdomain prefix and '/', then a name of up to 63 characters.
 */
export function isLabelKey(value: string): string[] {
  const errs: string[] = [];
  const parts = value.split('/');
  let name: string;
  if (parts.length === 1) {
    name = parts[0] ?? '';
  } else if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    name = parts[1] ?? '';
    if (prefix.length === 0) errs.push('prefix part must be non-empty');
    else for (const msg of isDNS1123Subdomain(prefix)) errs.push(`prefix part ${msg}`);
  } else {
    return [
      `a valid label key ${regexError(labelKeyMsg, labelKeyFmt, 'MyName', 'my.name', '123-abc')} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ];
  }
  if (name.length === 0) errs.push('name part must be non-empty');
  else if (byteLength(name) > labelKeyNameMaxLength) errs.push(`name part ${maxLenError(labelKeyNameMaxLength)}`);
  if (!labelKeyRe.test(name)) errs.push(`name part ${regexError(labelKeyMsg, labelKeyFmt, 'MyName', 'my.name', '123-abc')}`);
  return errs;
}

/** Problems with `value` as a label value (may be empty); empty when valid. */
export function isLabelValue(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > labelValueMaxLength) errs.push(maxLenError(labelValueMaxLength));
  if (!labelValueRe.test(value)) errs.push(regexError(labelValueMsg, labelValueFmt, 'MyValue', 'my_value', '12345'));
  return errs;
}

/**
 * Validates a name, or with `prefix` a `generateName` (which may end in '-'
 * because random characters follow), as a DNS subdomain.
 */
export function nameIsDNSSubdomain(name: string, prefix: boolean): string[] {
  return isDNS1123Subdomain(prefix ? maskTrailingDash(name) : name);
}

/** As `nameIsDNSSubdomain`, for kinds whose names must be DNS labels (Namespace). */
export function nameIsDNSLabel(name: string, prefix: boolean): string[] {
  return isDNS1123Label(prefix ? maskTrailingDash(name) : name);
}

/** As `nameIsDNSSubdomain`, for kinds whose names must be RFC 1035 labels (Service). */
export function nameIsDNS1035Label(name: string, prefix: boolean): string[] {
  return isDNS1035Label(prefix ? maskTrailingDash(name) : name);
}

/** Kubernetes' `maskTrailingDash`, including its habit of dropping the character before the dash. */
function maskTrailingDash(name: string): string {
  return name.length > 1 && name.endsWith('-') ? `${name.slice(0, -2)}a` : name;
}

/** Go's `%q` for the ASCII-printable strings names are made of; JSON quoting is the same there. */
export function quote(value: string): string {
  return JSON.stringify(value);
}

function invalidValue(field: string, value: string, message: string): FieldError {
  return { field, reason: 'FieldValueInvalid', message: `Invalid value: ${quote(value)}: ${message}` };
}

export interface NameValidationOptions {
  /** The rule for this kind's names; most kinds use `nameIsDNSSubdomain`. */
  nameFn?: (name: string, prefix: boolean) => string[];
  /** Field path of the metadata being checked, `metadata` by default. */
  path?: string;
}

/**
 * Checks `metadata.name` / `metadata.generateName` the way
 * `ValidateObjectMetaAccessor` does on create: one of them is required, and
 * each must follow the kind's name rule.
 */
export function validateObjectName(meta: ObjectMeta, options: NameValidationOptions = {}): FieldError[] {
  const nameFn = options.nameFn ?? nameIsDNSSubdomain;
  const path = options.path ?? 'metadata';
  const errs: FieldError[] = [];
  const generateName = meta.generateName ?? '';
  const name = meta.name ?? '';
  if (generateName !== '') {
    for (const msg of nameFn(generateName, true)) errs.push(invalidValue(`${path}.generateName`, generateName, msg));
  }
  if (name === '') {
    if (generateName === '') {
      errs.push({ field: `${path}.name`, reason: 'FieldValueRequired', message: 'Required value: name or generateName is required' });
    }
  } else {
    for (const msg of nameFn(name, false)) errs.push(invalidValue(`${path}.name`, name, msg));
  }
  return errs;
}

/** `ValidateLabels`: every key a qualified name, every value a label value; errors name the field, not the key. */
export function validateLabels(labels: Readonly<Record<string, string>> | undefined, path = 'metadata.labels'): FieldError[] {
  const errs: FieldError[] = [];
  if (labels === undefined) return errs;
  for (const [key, value] of Object.entries(labels)) {
    for (const msg of isLabelKey(key)) errs.push(invalidValue(path, key, msg));
    for (const msg of isLabelValue(value)) errs.push(invalidValue(path, value, msg));
  }
  return errs;
}

/** The alphabet Kubernetes draws generated-name suffixes from: no vowels (no accidental words), no look-alikes. */
export const generateNameAlphabet = 'bcdfghjklmnpqrstvwxz2456789';
const generatedSuffixLength = 5;
const maxGeneratedBaseLength = 63 - generatedSuffixLength;

export interface GenerateNameOptions {
  /** Returns an integer in [0, n); defaults to a cryptographic source. Injected for deterministic tests. */
  randomIndex?: (n: number) => number;
}

/**
 * `SimpleNameGenerator.GenerateName`: `base` cut to 58 characters plus five
 * random characters, so the result is a valid DNS label when `base` is one.
 */
export function generateName(base: string, options: GenerateNameOptions = {}): string {
  const pick = options.randomIndex ?? ((n: number) => randomInt(n));
  let suffix = '';
  for (let i = 0; i < generatedSuffixLength; i++) {
    suffix += generateNameAlphabet.charAt(pick(generateNameAlphabet.length));
  }
  return base.slice(0, maxGeneratedBaseLength) + suffix;
}
