/**
 * Kubernetes JSONPath (`k8s.io/client-go/util/jsonpath`) as CRD
 * `additionalPrinterColumns` use it: one expression, compiled once into a
 * function that returns every match. Missing keys give no results rather
 * than errors, as the CRD table convertor asks for (`AllowMissingKeys`).
 *
 * Supported: `$`/`@`, `.field` (with `\.` escapes), `['key']`, `[n]`,
 * `[start:end:step]`, `[*]`/`.*`, `[a,b]` unions, `..` recursive descent,
 * and filters `[?(@.type=='Ready')]` with `==` `!=` `<` `<=` `>` `>=` or a
 * bare path for existence. A single `{…}` wrapper is accepted; templates
 * with text, several actions or `range`/`end` are not (kubectl evaluates
 * those client-side).
 */
import { badRequest } from './errors.js';
import type { ApiError } from './errors.js';
import { isPlainObject } from './object.js';

/** Evaluates a compiled expression against a JSON value; never throws. */
export type JsonPathFn = (data: unknown) => unknown[];

type CompareOp = '==' | '!=' | '<' | '<=' | '>' | '>=';
type Operand = { kind: 'path'; steps: Step[] } | { kind: 'literal'; value: string | number | boolean };
type Step =
  | { kind: 'field'; name: string }
  | { kind: 'wildcard' }
  | { kind: 'recursive' }
  | { kind: 'slice'; start: number | undefined; end: number | undefined; step: number | undefined; single: boolean }
  | { kind: 'union'; branches: Step[][] }
  | { kind: 'filter'; left: Step[]; op: CompareOp | 'exists'; right: Operand | undefined };

const fieldTerminators = new Set(['.', '[', ']', ' ', '\t', ',', '(', ')', '=', '!', '<', '>', '{', '}', '$', '@', '\n', '\r']);
const sliceRe = /^(-?\d*)(?::(-?\d*))?(?::(-?\d*))?$/;
const filterRe = /^([^!<>=]+)(==|!=|<=|>=|<|>)(.+)$/;

class Parser {
  pos = 0;
  constructor(
    readonly expr: string,
    readonly text: string,
    readonly offset: number,
  ) {}

  fail(why: string, at = this.pos): ApiError {
    return badRequest(
      `invalid JSONPath expression ${JSON.stringify(this.expr)}: ${why} at position ${at + this.offset}; expected a path such as .status.phase, .spec.template.spec.domain.cpu.cores, .items[0].name or .status.conditions[?(@.type=='Ready')].status`,
    );
  }

  path(): Step[] {
    const steps: Step[] = [];
    while (this.pos < this.text.length) {
      const c = this.text.charAt(this.pos);
      if (c === ' ' || c === '\t' || c === '$' || c === '@') {
        this.pos++;
      } else if (this.text.startsWith('..', this.pos)) {
        if (steps.at(-1)?.kind === 'recursive') throw this.fail('invalid multiple recursive descent');
        this.pos += 2;
        steps.push({ kind: 'recursive' });
        if (this.pos < this.text.length && !fieldTerminators.has(this.text.charAt(this.pos))) steps.push(this.field());
      } else if (c === '.') {
        this.pos++;
        // A bare '.' (as in `{.}`) names the current value.
        if (this.pos < this.text.length && !fieldTerminators.has(this.text.charAt(this.pos))) steps.push(this.field());
      } else if (c === '[') {
        steps.push(this.bracket());
      } else {
        throw this.fail(`unexpected character '${c}'`);
      }
    }
    return steps;
  }

  private field(): Step {
    let name = '';
    while (this.pos < this.text.length) {
      const c = this.text.charAt(this.pos);
      if (c === '\\' && this.pos + 1 < this.text.length) {
        name += this.text.charAt(this.pos + 1);
        this.pos += 2;
      } else if (fieldTerminators.has(c)) {
        break;
      } else {
        name += c;
        this.pos++;
      }
    }
    return name === '*' ? { kind: 'wildcard' } : { kind: 'field', name };
  }

  /** Finds the index of `close`, skipping quoted strings and nested brackets. */
  private closing(from: number, close: string): number {
    let depth = 0;
    let quote = '';
    for (let i = from; i < this.text.length; i++) {
      const c = this.text.charAt(i);
      if (quote !== '') {
        if (c === '\\') i++;
        else if (c === quote) quote = '';
      } else if (c === "'" || c === '"') quote = c;
      else if (c === '[' || c === '(') depth++;
      else if (c === ']' || c === ')') {
        if (depth === 0 && c === close) return i;
        depth--;
      }
    }
    return -1;
  }

  private bracket(): Step {
    const open = this.pos;
    if (this.text.startsWith('[?(', open)) {
      const end = this.closing(open + 3, ')');
      if (end < 0 || this.text.charAt(end + 1) !== ']') throw this.fail('unterminated filter', open);
      this.pos = end + 2;
      return this.filter(this.text.slice(open + 3, end), open + 3);
    }
    const end = this.closing(open + 1, ']');
    if (end < 0) throw this.fail('unterminated array index', open);
    this.pos = end + 1;
    return this.bracketContent(this.text.slice(open + 1, end), open + 1);
  }

  private bracketContent(content: string, at: number): Step {
    const parts = splitTopLevel(content);
    if (parts.length > 1) {
      return { kind: 'union', branches: parts.map((p) => this.sub(`[${p.text.trim()}]`, at + p.start - 1)) };
    }
    const body = content.trim();
    if (body === '*') return { kind: 'wildcard' };
    const quoted = /^'(.*)'$|^"(.*)"$/s.exec(body);
    if (quoted !== null) return { kind: 'field', name: unquote(quoted[1] ?? quoted[2] ?? '') };
    const m = sliceRe.exec(body);
    if (m === null || body === '') throw this.fail(`invalid array index '${body}'`, at);
    const num = (s: string | undefined): number | undefined => (s === undefined || s === '' ? undefined : Number(s));
    return { kind: 'slice', start: num(m[1]), end: num(m[2]), step: num(m[3]), single: !body.includes(':') };
  }

  private sub(text: string, at: number): Step[] {
    return new Parser(this.expr, text, this.offset + at).path();
  }

  private filter(body: string, at: number): Step {
    const m = filterRe.exec(body);
    if (m === null) return { kind: 'filter', left: this.sub(body, at), op: 'exists', right: undefined };
    const [, left = '', op = '==', right = ''] = m;
    return { kind: 'filter', left: this.sub(left, at), op: op as CompareOp, right: this.operand(right.trim(), at + left.length + op.length) };
  }

  private operand(text: string, at: number): Operand {
    const quoted = /^'(.*)'$|^"(.*)"$/s.exec(text);
    if (quoted !== null) return { kind: 'literal', value: unquote(quoted[1] ?? quoted[2] ?? '') };
    if (text === 'true' || text === 'false') return { kind: 'literal', value: text === 'true' };
    if (/^[+-]?(\d+\.?\d*|\.\d+)$/.test(text)) return { kind: 'literal', value: Number(text) };
    if (text.startsWith('@') || text.startsWith('$') || text.startsWith('.')) return { kind: 'path', steps: this.sub(text, at) };
    throw this.fail(`cannot compare with '${text}': use a quoted string, a number, true/false or a path starting with @`, at);
  }
}

function unquote(s: string): string {
  return s.replace(/\\(.)/g, '$1');
}

/** Splits a bracket body on commas outside quotes, for unions. */
function splitTopLevel(content: string): { text: string; start: number }[] {
  const parts: { text: string; start: number }[] = [];
  let quote = '';
  let start = 0;
  for (let i = 0; i < content.length; i++) {
    const c = content.charAt(i);
    if (quote !== '') {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === "'" || c === '"') quote = c;
    else if (c === ',') {
      parts.push({ text: content.slice(start, i), start });
      start = i + 1;
    }
  }
  parts.push({ text: content.slice(start), start });
  return parts;
}

function children(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (isPlainObject(value)) return Object.values(value);
  return [];
}

function descendants(value: unknown, out: unknown[]): void {
  const kids = children(value);
  if (kids.length === 0) return;
  out.push(value);
  for (const kid of kids) descendants(kid, out);
}

/** Kubernetes' slice bounds; out-of-range indexes match nothing (Kubernetes errors, which a column shows as empty). */
function slice(list: unknown[], step: Extract<Step, { kind: 'slice' }>, out: unknown[]): void {
  const len = list.length;
  let start = step.start ?? 0;
  if (start < 0) start += len;
  let end = step.single ? start + 1 : (step.end ?? len);
  if (!step.single && end < 0) end += len;
  if (end === start) return;
  if (start < 0 || start >= len || end < 0 || end > len || start > end) return;
  const stride = step.step ?? 1;
  if (stride <= 0) return;
  for (let i = start; i < end; i += stride) out.push(list[i]);
}

function ordered<T extends string | number>(l: T, op: CompareOp, r: T): boolean {
  return op === '<' ? l < r : op === '<=' ? l <= r : op === '>' ? l > r : op === '>=' ? l >= r : op === '==' ? l === r : l !== r;
}

function compare(left: unknown, op: CompareOp, right: unknown): boolean {
  // Kubernetes refuses to compare across types (or non-scalars); such elements never match.
  if (typeof left === 'number' && typeof right === 'number') return ordered(left, op, right);
  if (typeof left === 'string' && typeof right === 'string') return ordered(left, op, right);
  if (typeof left === 'boolean' && typeof right === 'boolean') return op === '==' ? left === right : op === '!=' ? left !== right : false;
  return false;
}

function evaluate(steps: readonly Step[], input: unknown[]): unknown[] {
  let current = input;
  for (const step of steps) {
    const next: unknown[] = [];
    for (const value of current) apply(step, value, next);
    current = next;
    if (current.length === 0) break;
  }
  return current;
}

function apply(step: Step, value: unknown, out: unknown[]): void {
  switch (step.kind) {
    case 'field':
      if (isPlainObject(value) && Object.hasOwn(value, step.name)) out.push(value[step.name]);
      return;
    case 'wildcard':
      out.push(...children(value));
      return;
    case 'recursive':
      descendants(value, out);
      return;
    case 'slice':
      if (Array.isArray(value)) slice(value, step, out);
      return;
    case 'union':
      for (const branch of step.branches) out.push(...evaluate(branch, [value]));
      return;
    case 'filter':
      if (!Array.isArray(value)) return;
      for (const item of value) {
        const lefts = evaluate(step.left, [item]);
        if (step.op === 'exists') {
          if (lefts.length > 0) out.push(item);
          continue;
        }
        if (lefts.length !== 1 || step.right === undefined) continue;
        const rights = step.right.kind === 'literal' ? [step.right.value] : evaluate(step.right.steps, [item]);
        if (rights.length !== 1) continue;
        if (compare(lefts[0], step.op, rights[0])) out.push(item);
      }
      return;
  }
}

/**
 * Compiles a JSONPath expression (`.status.phase`, `{.spec.running}`,
 * `.status.conditions[?(@.type=='Ready')].status`). Throws a 400 `ApiError`
 * naming the problem and its position when the expression is malformed.
 */
export function compileJsonPath(expr: string): JsonPathFn {
  let text = expr.trim();
  let offset = expr.indexOf(text);
  if (text.startsWith('{')) {
    if (!text.endsWith('}') || text.indexOf('{', 1) >= 0 || text.indexOf('}') !== text.length - 1) {
      throw badRequest(
        `invalid JSONPath expression ${JSON.stringify(expr)}: only a single {…} action is supported here, without text, range or end`,
      );
    }
    text = text.slice(1, -1);
    offset += 1;
  } else if (text.includes('{') || text.includes('}')) {
    throw badRequest(`invalid JSONPath expression ${JSON.stringify(expr)}: braces are only allowed around the whole expression`);
  }
  const steps = new Parser(expr, text, offset).path();
  return (data) => evaluate(steps, [data]);
}

/**
 * A result as Kubernetes' JSONPath printer writes it (the text of a `string`
 * printer column): strings raw, objects and lists as compact JSON with
 * sorted keys, numbers in Go's `%v` form, JSON null as `<no value>`.
 */
export function formatJsonPathValue(value: unknown): string {
  if (value === null || value === undefined) return '<no value>';
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return goNumber(value);
  if (typeof value === 'boolean') return String(value);
  return goJson(value);
}

/** Go's `%v` for float64: like JavaScript, except exponents already below 1e-4. */
function goNumber(n: number): string {
  if (n !== 0 && Math.abs(n) < 1e-4) {
    return n.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
  }
  return String(n);
}

/** Go's `json.Marshal` of decoded JSON: sorted map keys and HTML-safe escapes. */
export function goJson(value: unknown): string {
  return JSON.stringify(sortKeys(value)).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
  return out;
}
