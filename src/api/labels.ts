/**
 * Label selectors: the `labelSelector` query string grammar and the
 * `metav1.LabelSelector` object, both compiled once into a matcher that is
 * cheap to run against every object of a list or watch. Grammar, validation
 * and matching follow `k8s.io/apimachinery/pkg/labels/selector.go`.
 */
import { badRequest } from './errors.js';
import type { ApiError } from './errors.js';
import { isLabelKey, isLabelValue } from './names.js';

export type LabelOperator =
  | 'Exists'
  | 'DoesNotExist'
  | 'Equals'
  | 'DoubleEquals'
  | 'NotEquals'
  | 'In'
  | 'NotIn'
  | 'GreaterThan'
  | 'LessThan';

/** One ANDed term of a selector; `values` are sorted and unique. */
export interface LabelRequirement {
  readonly key: string;
  readonly operator: LabelOperator;
  readonly values: readonly string[];
}

export type Labels = Readonly<Record<string, string>>;

/** A compiled selector. */
export interface LabelSelector {
  /** Sorted by key, as Kubernetes keeps them. */
  readonly requirements: readonly LabelRequirement[];
  /** True for the empty selector; callers can skip matching altogether. */
  readonly matchesEverything: boolean;
  /** True for the selector of a nil `metav1.LabelSelector`. */
  readonly matchesNothing: boolean;
  matches(labels: Labels | undefined): boolean;
  /** The canonical string form (`a=b,c in (d,e),!f`). */
  toString(): string;
}

/** `metav1.LabelSelector`. */
export interface MetaLabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

const grammarHint =
  "a label selector is a comma-separated list of requirements such as 'app=web', 'tier!=db', 'env in (prod,staging)', 'env notin (dev)', 'gpu' or '!gpu'";

type Token =
  | { kind: 'id'; text: string; pos: number }
  | { kind: 'op'; text: '=' | '==' | '!=' | '!' | '(' | ')' | ',' | '>' | '<'; pos: number }
  | { kind: 'end'; text: ''; pos: number };

const specials = new Set(['=', '!', '(', ')', ',', '>', '<']);
const operatorTokens = new Set(['=', '==', '!=', '!', '(', ')', ',', '>', '<']);
const whitespace = new Set([' ', '\t', '\r', '\n']);

function isOpText(text: string): text is Extract<Token, { kind: 'op' }>['text'] {
  return operatorTokens.has(text);
}

function lex(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const ch = input.charAt(i);
    if (whitespace.has(ch)) {
      i++;
      continue;
    }
    const start = i;
    if (specials.has(ch)) {
      // Longest operator wins ('!=' over '!'), as Kubernetes' lexer does.
      let text = ch;
      const two = input.slice(i, i + 2);
      if (isOpText(two)) text = two;
      i += text.length;
      if (isOpText(text)) tokens.push({ kind: 'op', text, pos: start });
      continue;
    }
    while (i < input.length && !specials.has(input.charAt(i)) && !whitespace.has(input.charAt(i))) i++;
    tokens.push({ kind: 'id', text: input.slice(start, i), pos: start });
  }
  tokens.push({ kind: 'end', text: '', pos: input.length });
  return tokens;
}

class Parser {
  private index = 0;

  constructor(
    private readonly input: string,
    private readonly tokens: Token[],
  ) {}

  private peek(): Token {
    return this.tokens[this.index] ?? { kind: 'end', text: '', pos: this.input.length };
  }

  private next(): Token {
    const token = this.peek();
    if (this.index < this.tokens.length) this.index++;
    return token;
  }

  fail(token: Token, expected: string): ApiError {
    const found = token.kind === 'end' ? 'end of string' : `'${token.text}'`;
    return badRequest(
      `unable to parse requirement: found ${found} at position ${token.pos} of label selector ${JSON.stringify(this.input)}, expected: ${expected}; ${grammarHint}`,
    );
  }

  parse(): LabelRequirement[] {
    const requirements: LabelRequirement[] = [];
    if (this.peek().kind === 'end') return requirements;
    for (;;) {
      requirements.push(this.requirement());
      const sep = this.next();
      if (sep.kind === 'end') return requirements;
      if (sep.text !== ',') throw this.fail(sep, "',' or 'end of string'");
      const following = this.peek();
      if (following.kind !== 'id' && following.text !== '!') throw this.fail(following, "identifier after ','");
    }
  }

  private requirement(): LabelRequirement {
    let token = this.next();
    const negated = token.text === '!' && token.kind === 'op';
    if (negated) token = this.next();
    if (token.kind !== 'id') throw this.fail(token, negated ? 'identifier' : '!, identifier, or end of string');
    const key = token.text;
    const after = this.peek();
    if (negated || after.kind === 'end' || after.text === ',') {
      if (negated && after.kind !== 'end' && after.text !== ',') throw this.fail(after, "',' or 'end of string' after '!key'");
      return requirement(key, negated ? 'DoesNotExist' : 'Exists', []);
    }
    const op = this.next();
    switch (op.text) {
      case 'in':
        return requirement(key, 'In', this.valueSet());
      case 'notin':
        return requirement(key, 'NotIn', this.valueSet());
      case '=':
        return requirement(key, 'Equals', [this.exactValue()]);
      case '==':
        return requirement(key, 'DoubleEquals', [this.exactValue()]);
      case '!=':
        return requirement(key, 'NotEquals', [this.exactValue()]);
      case '>':
        return requirement(key, 'GreaterThan', [this.exactValue()]);
      case '<':
        return requirement(key, 'LessThan', [this.exactValue()]);
      default:
        throw this.fail(op, '=, ==, !=, in, notin, >, <');
    }
  }

  private exactValue(): string {
    const token = this.peek();
    if (token.kind === 'end' || token.text === ',') return '';
    this.next();
    if (token.kind === 'id') return token.text;
    throw this.fail(token, 'a value');
  }

  /** `(a,b)`; empty members are the empty string, so `()` is `{""}` as in Kubernetes. */
  private valueSet(): string[] {
    const open = this.next();
    if (open.text !== '(') throw this.fail(open, "'('");
    const values: string[] = [];
    let expectValue = true;
    for (;;) {
      const token = this.next();
      if (token.kind === 'id') {
        if (!expectValue) throw this.fail(token, "',' or ')'");
        values.push(token.text);
        expectValue = false;
      } else if (token.text === ',') {
        if (expectValue) values.push('');
        expectValue = true;
      } else if (token.text === ')') {
        if (expectValue) values.push('');
        return values;
      } else {
        throw this.fail(token, expectValue ? "a value, ',' or ')'" : "',' or ')'");
      }
    }
  }
}

function requirement(key: string, operator: LabelOperator, rawValues: string[]): LabelRequirement {
  const problems: string[] = [];
  for (const msg of isLabelKey(key)) problems.push(`key ${JSON.stringify(key)}: ${msg}`);
  const values = [...new Set(rawValues)].sort();
  switch (operator) {
    case 'In':
    case 'NotIn':
      if (values.length === 0) problems.push(`key ${JSON.stringify(key)}: for 'in', 'notin' operators, values set can't be empty`);
      break;
    case 'Exists':
    case 'DoesNotExist':
      if (values.length !== 0) problems.push(`key ${JSON.stringify(key)}: values set must be empty for exists and does not exist`);
      break;
    case 'GreaterThan':
    case 'LessThan':
      for (const v of values) {
        if (parseInt64(v) === undefined) problems.push(`key ${JSON.stringify(key)}: for 'Gt', 'Lt' operators, the value must be an integer, not ${JSON.stringify(v)}`);
      }
      break;
    default:
      if (values.length !== 1) problems.push(`key ${JSON.stringify(key)}: exact-match compatibility requires one single value`);
  }
  for (const v of values) {
    for (const msg of isLabelValue(v)) problems.push(`value ${JSON.stringify(v)} for key ${JSON.stringify(key)}: ${msg}`);
  }
  if (problems.length > 0) throw badRequest(`invalid label selector requirement: ${problems.join('; ')}`);
  return { key, operator, values };
}

function parseInt64(value: string): bigint | undefined {
  return /^[+-]?\d{1,19}$/.test(value) ? BigInt(value) : undefined;
}

function compileRequirement(r: LabelRequirement): (labels: Labels) => boolean {
  const { key, values } = r;
  const only = values[0] ?? '';
  const set = values.length > 4 ? new Set(values) : undefined;
  const has = (v: string): boolean => (set === undefined ? values.includes(v) : set.has(v));
  switch (r.operator) {
    case 'Exists':
      return (labels) => Object.hasOwn(labels, key);
    case 'DoesNotExist':
      return (labels) => !Object.hasOwn(labels, key);
    case 'Equals':
    case 'DoubleEquals':
      return (labels) => Object.hasOwn(labels, key) && labels[key] === only;
    case 'NotEquals':
      return (labels) => !Object.hasOwn(labels, key) || labels[key] !== only;
    case 'In':
      return (labels) => Object.hasOwn(labels, key) && has(labels[key] ?? '');
    case 'NotIn':
      return (labels) => !Object.hasOwn(labels, key) || !has(labels[key] ?? '');
    case 'GreaterThan':
    case 'LessThan': {
      const bound = parseInt64(only) ?? 0n;
      const greater = r.operator === 'GreaterThan';
      return (labels) => {
        if (!Object.hasOwn(labels, key)) return false;
        const n = parseInt64(labels[key] ?? '');
        if (n === undefined) return false;
        return greater ? n > bound : n < bound;
      };
    }
  }
}

const operatorText: Record<LabelOperator, string> = {
  Exists: '',
  DoesNotExist: '',
  Equals: '=',
  DoubleEquals: '==',
  NotEquals: '!=',
  In: ' in ',
  NotIn: ' notin ',
  GreaterThan: '>',
  LessThan: '<',
};

/** The canonical text of one requirement, as `Requirement.String()` writes it. */
export function requirementString(r: LabelRequirement): string {
  if (r.operator === 'DoesNotExist') return `!${r.key}`;
  if (r.operator === 'Exists') return r.key;
  const values = r.operator === 'In' || r.operator === 'NotIn' ? `(${r.values.join(',')})` : r.values.join(',');
  return `${r.key}${operatorText[r.operator]}${values}`;
}

function compile(requirements: LabelRequirement[], matchesNothing: boolean): LabelSelector {
  const sorted = [...requirements].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const tests = sorted.map(compileRequirement);
  const empty: Labels = {};
  const text = sorted.map(requirementString).join(',');
  return {
    requirements: sorted,
    matchesEverything: !matchesNothing && sorted.length === 0,
    matchesNothing,
    matches(labels) {
      if (matchesNothing) return false;
      const l = labels ?? empty;
      for (const t of tests) if (!t(l)) return false;
      return true;
    },
    toString: () => text,
  };
}

/** The selector that matches every object. */
export const everything: LabelSelector = compile([], false);
/** The selector that matches no object (a nil `metav1.LabelSelector`). */
export const nothing: LabelSelector = compile([], true);

/**
 * Parses a `labelSelector` query value. Throws a 400 `ApiError` that says
 * what was found, where, and what was expected.
 */
export function parseLabelSelector(selector: string): LabelSelector {
  if (selector.trim() === '') return everything;
  return compile(new Parser(selector, lex(selector)).parse(), false);
}

const objectOperators: Record<string, LabelOperator | undefined> = {
  In: 'In',
  NotIn: 'NotIn',
  Exists: 'Exists',
  DoesNotExist: 'DoesNotExist',
};

/**
 * Compiles a `metav1.LabelSelector` (`LabelSelectorAsSelector`): absent
 * matches nothing, `{}` matches everything, `matchLabels` and
 * `matchExpressions` are ANDed.
 */
export function labelSelectorFromObject(selector: MetaLabelSelector | null | undefined): LabelSelector {
  if (selector === null || selector === undefined) return nothing;
  const requirements: LabelRequirement[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (typeof value !== 'string') throw badRequest(`invalid label selector: matchLabels[${JSON.stringify(key)}] must be a string`);
    requirements.push(requirement(key, 'Equals', [value]));
  }
  const expressions = selector.matchExpressions ?? [];
  if (!Array.isArray(expressions)) throw badRequest('invalid label selector: matchExpressions must be a list');
  expressions.forEach((expr, i) => {
    const operator = objectOperators[expr.operator];
    if (operator === undefined) {
      throw badRequest(
        `invalid label selector: matchExpressions[${i}].operator: ${JSON.stringify(expr.operator)} is not a valid label selector operator; use In, NotIn, Exists or DoesNotExist`,
      );
    }
    const values = expr.values ?? [];
    if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) {
      throw badRequest(`invalid label selector: matchExpressions[${i}].values must be a list of strings`);
    }
    requirements.push(requirement(expr.key, operator, values));
  });
  return compile(requirements, false);
}
