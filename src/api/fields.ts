/**
 * Field selectors (`fieldSelector=metadata.name=vm1,status.phase!=Running`):
 * parsed once, with Kubernetes' `\,` `\=` `\\` escaping
 * (`k8s.io/apimachinery/pkg/fields/selector.go`), then matched per object
 * through a function that reads a field's string value.
 */
import { badRequest } from './errors.js';
import type { ApiError } from './errors.js';
import type { KObject } from './object.js';
import { isPlainObject } from './object.js';

export type FieldOperator = 'Equals' | 'DoubleEquals' | 'NotEquals';

export interface FieldRequirement {
  readonly field: string;
  readonly operator: FieldOperator;
  /** Unescaped. */
  readonly value: string;
}

/**
 * Reads the string value of a field for matching. Returns `''` for a field
 * that is supported but unset, and `undefined` for a field the resource does
 * not support selecting on.
 */
export type FieldValueFn = (obj: KObject, field: string) => string | undefined;

export interface FieldSelector {
  readonly requirements: readonly FieldRequirement[];
  readonly matchesEverything: boolean;
  /**
   * ANDs the requirements, reading fields with `valueOf` (by default
   * `defaultFieldValue`). A field `valueOf` cannot read (`undefined`, e.g. an
   * object or a list) equals nothing, so `=` fails and `!=` holds; matching
   * never throws, because it runs inside lists and watch streams. Reject
   * fields a resource cannot select on up front, with
   * `ParseFieldSelectorOptions.supported`.
   */
  matches(obj: KObject, valueOf?: FieldValueFn): boolean;
  /** The value an object must have for `field` (`field=v` or `field==v`), letting stores look one object up directly. */
  exactValue(field: string): string | undefined;
  toString(): string;
}

export interface ParseFieldSelectorOptions {
  /** Fields this resource can select on; others are rejected with `field label not supported: X`. */
  supported?: (field: string) => boolean;
}

function unsupported(field: string): ApiError {
  return badRequest(`field label not supported: ${field}`);
}

/** Splits on unescaped commas; escapes stay in the terms for `unescapeValue`. */
function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let start = 0;
  let escaped = false;
  for (let i = 0; i < selector.length; i++) {
    const c = selector.charAt(i);
    if (escaped) escaped = false;
    else if (c === '\\') escaped = true;
    else if (c === ',') {
      terms.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(selector.slice(start));
  return terms;
}

const operators: readonly [string, FieldOperator][] = [
  ['!=', 'NotEquals'],
  ['==', 'DoubleEquals'],
  ['=', 'Equals'],
];

/** The left side cannot be escaped, so the first operator found splits the term, '!=' and '==' before '='. */
function splitTerm(term: string): { field: string; operator: FieldOperator; raw: string } | undefined {
  for (let i = 0; i < term.length; i++) {
    for (const [text, operator] of operators) {
      if (term.startsWith(text, i)) return { field: term.slice(0, i), operator, raw: term.slice(i + text.length) };
    }
  }
  return undefined;
}

function unescapeValue(raw: string, selector: string): string {
  if (!/[\\,=]/.test(raw)) return raw;
  let out = '';
  let escaped = false;
  for (const c of raw) {
    if (escaped) {
      if (c !== '\\' && c !== ',' && c !== '=') {
        throw badRequest(
          `invalid field selector ${JSON.stringify(selector)}: invalid escape sequence: \\${c}; only \\\\, \\, and \\= are recognised`,
        );
      }
      out += c;
      escaped = false;
    } else if (c === '\\') {
      escaped = true;
    } else if (c === ',' || c === '=') {
      throw badRequest(
        `invalid field selector ${JSON.stringify(selector)}: unescaped character in value: '${c}'; write it as \\${c}`,
      );
    } else {
      out += c;
    }
  }
  if (escaped) throw badRequest(`invalid field selector ${JSON.stringify(selector)}: invalid escape sequence: \\ at the end of a value`);
  return out;
}

/** Escapes a literal for use as a field selector value. */
export function escapeFieldValue(value: string): string {
  return value.replace(/[\\,=]/g, (c) => `\\${c}`);
}

const operatorText: Record<FieldOperator, string> = { Equals: '=', DoubleEquals: '==', NotEquals: '!=' };

/**
 * Parses a `fieldSelector` query value. Bad syntax and unsupported fields
 * are 400s. Like Kubernetes, whitespace is significant (`a = b` selects
 * field `a ` for value ` b`) and empty terms are skipped.
 */
export function parseFieldSelector(selector: string, options: ParseFieldSelectorOptions = {}): FieldSelector {
  const requirements: FieldRequirement[] = [];
  for (const term of splitTerms(selector).sort()) {
    if (term === '') continue;
    const split = splitTerm(term);
    if (split === undefined) {
      throw badRequest(
        `invalid selector: '${selector}'; can't understand '${term}': each term must be field=value, field==value or field!=value (e.g. metadata.name=vm1)`,
      );
    }
    if (options.supported !== undefined && !options.supported(split.field)) throw unsupported(split.field);
    requirements.push({ field: split.field, operator: split.operator, value: unescapeValue(split.raw, selector) });
  }
  const text = requirements.map((r) => `${r.field}${operatorText[r.operator]}${escapeFieldValue(r.value)}`).join(',');
  // Paths split once here so the default reader does no parsing per object.
  const compiled = requirements.map((r) => ({ ...r, segments: segmentsOf(r.field) }));
  return {
    requirements,
    matchesEverything: requirements.length === 0,
    matches(obj, valueOf) {
      for (const r of compiled) {
        const actual = valueOf === undefined ? readPath(obj, r.segments) : valueOf(obj, r.field);
        if ((actual === r.value) === (r.operator === 'NotEquals')) return false;
      }
      return true;
    },
    exactValue(field) {
      return requirements.find((r) => r.field === field && r.operator !== 'NotEquals')?.value;
    },
    toString: () => text,
  };
}

const fieldPathCache = new Map<string, readonly string[] | null>();
const fieldPathSegment = /^[^.\s]+$/;

/** Memoised so hot-path matching does not re-split paths; bounded because keys come from requests. */
function segmentsOf(path: string): readonly string[] | null {
  let segments = fieldPathCache.get(path);
  if (segments === undefined) {
    const parts = path.split('.');
    segments = parts.every((p) => fieldPathSegment.test(p)) ? parts : null;
    if (fieldPathCache.size > 1000) fieldPathCache.clear();
    fieldPathCache.set(path, segments);
  }
  return segments;
}

/**
 * Reads a dotted field path (`metadata.name`, `status.phase`,
 * `involvedObject.name`, `type`) from an object: strings as they are,
 * numbers and booleans in their JSON form, unset as `''` (as Kubernetes'
 * field sets do). Returns `undefined`, meaning "no selectable value", for
 * malformed paths (empty segments) and for paths that lead to an object or
 * a list.
 */
export function defaultFieldValue(obj: KObject, path: string): string | undefined {
  return readPath(obj, segmentsOf(path));
}

function readPath(obj: KObject, segments: readonly string[] | null): string | undefined {
  if (segments === null) return undefined;
  let current: unknown = obj;
  for (const segment of segments) {
    if (current === undefined || current === null) return '';
    if (!isPlainObject(current)) return undefined;
    current = current[segment];
  }
  if (current === undefined || current === null) return '';
  if (typeof current === 'string') return current;
  if (typeof current === 'number' || typeof current === 'boolean') return String(current);
  return undefined;
}
