/**
 * JSON Patch (RFC 6902) with JSON Pointer (RFC 6901) paths, as
 * `application/json-patch+json` PATCH bodies use it. Like kube-apiserver, a
 * malformed patch document is a 400 and a well-formed one that does not
 * apply (a failed `test`, a missing path) is a 422 `Invalid`.
 */
import { ApiError, badRequest } from '../errors.js';
import { isPlainObject } from '../object.js';
import { jsonClone, jsonEqual, preview, setField } from './json-value.js';

export type JsonPatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

/** kube-apiserver's cap on operations per patch (`maxJSONPatchOperations`). */
export const maxJsonPatchOperations = 10000;

/** Splits a JSON Pointer into unescaped reference tokens; `''` is the whole document. */
export function parseJsonPointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) {
    throw badRequest(`invalid JSON pointer ${JSON.stringify(pointer)}: it must be empty or start with '/' (e.g. /spec/runStrategy)`);
  }
  return pointer
    .slice(1)
    .split('/')
    .map((token) => {
      if (/~[^01]|~$/.test(token)) {
        throw badRequest(`invalid JSON pointer ${JSON.stringify(pointer)}: '~' must be followed by 0 ('~') or 1 ('/')`);
      }
      return token.replace(/~1/g, '/').replace(/~0/g, '~');
    });
}

/** Escapes one reference token for a JSON Pointer (`a/b` → `a~1b`). */
export function escapeJsonPointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

function stringField(op: Record<string, unknown>, field: string, index: number): string {
  const value = op[field];
  if (typeof value !== 'string') {
    throw badRequest(`invalid JSON patch: operation ${index} is missing its "${field}" field or it is not a string`);
  }
  return value;
}

/** Validates a decoded `application/json-patch+json` body. */
export function parseJsonPatch(body: unknown): JsonPatchOperation[] {
  if (!Array.isArray(body)) {
    throw badRequest(`invalid JSON patch: the body must be a JSON array of operations such as [{"op":"replace","path":"/spec/runStrategy","value":"Always"}]`);
  }
  if (body.length > maxJsonPatchOperations) {
    throw new ApiError('RequestEntityTooLarge', `The allowed maximum operations in a JSON patch is ${maxJsonPatchOperations}, got ${body.length}`);
  }
  return body.map((raw, i): JsonPatchOperation => {
    if (!isPlainObject(raw)) throw badRequest(`invalid JSON patch: operation ${i} is not an object`);
    const op = raw['op'];
    const path = stringField(raw, 'path', i);
    parseJsonPointer(path);
    switch (op) {
      case 'add':
      case 'replace':
      case 'test':
        if (!Object.hasOwn(raw, 'value')) throw badRequest(`invalid JSON patch: ${op} operation ${i} is missing its "value" field`);
        return { op, path, value: raw['value'] };
      case 'remove':
        return { op, path };
      case 'move':
      case 'copy': {
        const from = stringField(raw, 'from', i);
        parseJsonPointer(from);
        return { op, from, path };
      }
      default:
        throw badRequest(`invalid JSON patch: operation ${i} has unknown op ${preview(op)}; use add, remove, replace, move, copy or test`);
    }
  });
}

/** A patch that does not apply to this document: 422, as kube-apiserver answers. */
function doesNotApply(index: number, op: JsonPatchOperation, why: string): ApiError {
  return new ApiError('Invalid', `the server rejected our request due to an error in our request: json patch ${op.op} operation ${index} does not apply: ${why}`);
}

const missing = Symbol('missing');

function arrayIndex(token: string, length: number, allowEnd: boolean): number | undefined {
  if (allowEnd && token === '-') return length;
  if (!/^(0|[1-9]\d*)$/.test(token)) return undefined;
  const n = Number(token);
  return n < length || (allowEnd && n === length) ? n : undefined;
}

function get(doc: unknown, tokens: readonly string[]): unknown {
  let current: unknown = doc;
  for (const token of tokens) {
    if (Array.isArray(current)) {
      const i = arrayIndex(token, current.length, false);
      if (i === undefined) return missing;
      current = current[i];
    } else if (isPlainObject(current) && Object.hasOwn(current, token)) {
      current = current[token];
    } else {
      return missing;
    }
  }
  return current;
}

function pointerOf(tokens: readonly string[]): string {
  return tokens.map((t) => `/${escapeJsonPointerToken(t)}`).join('');
}

class Applier {
  constructor(public doc: unknown) {}

  /** The container holding the last token, or a reason it cannot be reached. */
  private parent(tokens: readonly string[]): { container: unknown; key: string } | string {
    const key = tokens.at(-1) ?? '';
    const container = get(this.doc, tokens.slice(0, -1));
    if (container === missing) return `doc is missing path: ${JSON.stringify(pointerOf(tokens.slice(0, -1)))}`;
    return { container, key };
  }

  add(tokens: readonly string[], value: unknown): string | undefined {
    if (tokens.length === 0) {
      this.doc = value;
      return undefined;
    }
    const p = this.parent(tokens);
    if (typeof p === 'string') return p;
    if (Array.isArray(p.container)) {
      const i = arrayIndex(p.key, p.container.length, true);
      if (i === undefined) return `unable to access invalid index ${JSON.stringify(p.key)} of an array of length ${p.container.length}`;
      p.container.splice(i, 0, value);
    } else if (isPlainObject(p.container)) {
      setField(p.container, p.key, value);
    } else {
      return `${JSON.stringify(pointerOf(tokens.slice(0, -1)))} is neither an object nor an array`;
    }
    return undefined;
  }

  remove(tokens: readonly string[]): { removed: unknown } | string {
    if (tokens.length === 0) return 'the whole document cannot be removed';
    const p = this.parent(tokens);
    if (typeof p === 'string') return p;
    if (Array.isArray(p.container)) {
      const i = arrayIndex(p.key, p.container.length, false);
      if (i === undefined) return `unable to access invalid index ${JSON.stringify(p.key)} of an array of length ${p.container.length}`;
      return { removed: p.container.splice(i, 1)[0] };
    }
    if (isPlainObject(p.container) && Object.hasOwn(p.container, p.key)) {
      const removed = p.container[p.key];
      delete p.container[p.key];
      return { removed };
    }
    return `doc is missing path: ${JSON.stringify(pointerOf(tokens))}`;
  }
}

/**
 * Applies a JSON patch (a decoded body, validated here) to a copy of `doc`
 * and returns the result; `doc` is not modified.
 */
export function applyJsonPatch(doc: unknown, patch: unknown): unknown {
  const ops = parseJsonPatch(patch);
  const applier = new Applier(jsonClone(doc));
  ops.forEach((op, index) => {
    const path = parseJsonPointer(op.path);
    let problem: string | undefined;
    switch (op.op) {
      case 'add':
        problem = applier.add(path, jsonClone(op.value));
        break;
      case 'remove': {
        const r = applier.remove(path);
        if (typeof r === 'string') problem = r;
        break;
      }
      case 'replace': {
        if (path.length > 0 && get(applier.doc, path) === missing) {
          problem = `doc is missing path: ${JSON.stringify(op.path)}`;
          break;
        }
        if (path.length > 0) applier.remove(path);
        problem = applier.add(path, jsonClone(op.value));
        break;
      }
      case 'move': {
        const from = parseJsonPointer(op.from);
        if (from.length < path.length && from.every((t, i) => t === path[i])) {
          problem = `"from" ${JSON.stringify(op.from)} is an ancestor of "path" ${JSON.stringify(op.path)}; a value cannot be moved into itself`;
          break;
        }
        const r = applier.remove(from);
        if (typeof r === 'string') problem = `from: ${r}`;
        else problem = applier.add(path, r.removed);
        break;
      }
      case 'copy': {
        const value = get(applier.doc, parseJsonPointer(op.from));
        if (value === missing) problem = `from: doc is missing path: ${JSON.stringify(op.from)}`;
        else problem = applier.add(path, jsonClone(value));
        break;
      }
      case 'test': {
        const actual = get(applier.doc, path);
        // As the Kubernetes library does, a missing value passes a test for null.
        if (actual === missing ? op.value !== null : !jsonEqual(actual, op.value)) {
          problem = `testing value ${op.path} failed: expected ${preview(op.value)}, found ${actual === missing ? 'nothing' : preview(actual)}`;
        }
        break;
      }
    }
    if (problem !== undefined) throw doesNotApply(index, op, problem);
  });
  return applier.doc;
}
