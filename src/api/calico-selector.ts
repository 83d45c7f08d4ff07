/**
 * Calico's selector expression language (`role == 'db' && has(tier)`),
 * as GlobalNetworkPolicy and Calico NetworkPolicy use it for `selector`,
 * `namespaceSelector` and rule selectors: parsed once into a tree, then
 * matched against label sets. Pure; the API's validation and the policy
 * compiler share it.
 */

/** A parsed selector. */
export interface CalicoSelector {
  matches(labels: Readonly<Record<string, string>>): boolean;
  /** The canonical text, as Calico prints it back. */
  readonly text: string;
}

/** A selector that does not parse: `offset` is where the parser stopped. */
export class CalicoSelectorError extends Error {
  constructor(
    readonly selector: string,
    readonly offset: number,
    what: string,
  ) {
    super(`invalid selector ${JSON.stringify(selector)} at character ${offset + 1}: ${what}; Calico selectors look like "app == 'web' && has(tier)", with ==, !=, in {…}, not in {…}, has(), !, &&, || and all()`);
    this.name = 'CalicoSelectorError';
  }
}

type Node =
  | { op: 'all' }
  | { op: 'has'; key: string }
  | { op: 'eq' | 'ne' | 'contains' | 'starts' | 'ends'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'not'; operand: Node }
  | { op: 'and' | 'or'; operands: Node[] };

type Token =
  | { kind: 'word'; text: string; at: number }
  | { kind: 'string'; text: string; at: number }
  | { kind: 'symbol'; text: string; at: number }
  | { kind: 'end'; text: ''; at: number };

const symbols = ['==', '!=', '&&', '||', '!', '(', ')', '{', '}', ','];
const wordPattern = /^[A-Za-z0-9_./-]+/;

function lex(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source.charAt(i);
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "'" || c === '"') {
      const close = source.indexOf(c, i + 1);
      if (close < 0) throw new CalicoSelectorError(source, i, 'the quoted value is not closed');
      tokens.push({ kind: 'string', text: source.slice(i + 1, close), at: i });
      i = close + 1;
      continue;
    }
    const symbol = symbols.find((s) => source.startsWith(s, i));
    if (symbol !== undefined) {
      tokens.push({ kind: 'symbol', text: symbol, at: i });
      i += symbol.length;
      continue;
    }
    const word = wordPattern.exec(source.slice(i));
    if (word === null) throw new CalicoSelectorError(source, i, `unexpected ${JSON.stringify(c)}`);
    tokens.push({ kind: 'word', text: word[0], at: i });
    i += word[0].length;
  }
  tokens.push({ kind: 'end', text: '', at: source.length });
  return tokens;
}

class Parser {
  private position = 0;

  constructor(
    private readonly source: string,
    private readonly tokens: Token[],
  ) {}

  parse(): Node {
    const node = this.or();
    const rest = this.peek();
    if (rest.kind !== 'end') this.fail(rest, `expected && or || or the end, found ${JSON.stringify(rest.text)}`);
    return node;
  }

  private peek(offset = 0): Token {
    const token = this.tokens[Math.min(this.position + offset, this.tokens.length - 1)];
    if (token === undefined) throw new CalicoSelectorError(this.source, this.source.length, 'unexpected end');
    return token;
  }

  private next(): Token {
    const token = this.peek();
    if (token.kind !== 'end') this.position++;
    return token;
  }

  private fail(token: Token, what: string): never {
    throw new CalicoSelectorError(this.source, token.at, what);
  }

  private expectSymbol(text: string): void {
    const token = this.next();
    if (token.kind !== 'symbol' || token.text !== text) this.fail(token, `expected ${JSON.stringify(text)}, found ${token.kind === 'end' ? 'the end' : JSON.stringify(token.text)}`);
  }

  private or(): Node {
    const operands = [this.and()];
    while (this.peek().kind === 'symbol' && this.peek().text === '||') {
      this.next();
      operands.push(this.and());
    }
    return operands.length === 1 && operands[0] !== undefined ? operands[0] : { op: 'or', operands };
  }

  private and(): Node {
    const operands = [this.unary()];
    while (this.peek().kind === 'symbol' && this.peek().text === '&&') {
      this.next();
      operands.push(this.unary());
    }
    return operands.length === 1 && operands[0] !== undefined ? operands[0] : { op: 'and', operands };
  }

  private unary(): Node {
    const token = this.peek();
    if (token.kind === 'symbol' && token.text === '!') {
      this.next();
      return { op: 'not', operand: this.unary() };
    }
    if (token.kind === 'symbol' && token.text === '(') {
      this.next();
      const inner = this.or();
      this.expectSymbol(')');
      return inner;
    }
    return this.term();
  }

  private term(): Node {
    const token = this.next();
    if (token.kind !== 'word') this.fail(token, `expected a label key, has(), all() or "(", found ${token.kind === 'end' ? 'the end' : JSON.stringify(token.text)}`);
    const after = this.peek();
    if ((token.text === 'all' || token.text === 'global') && after.kind === 'symbol' && after.text === '(') {
      this.next();
      this.expectSymbol(')');
      return { op: 'all' };
    }
    if (token.text === 'has' && after.kind === 'symbol' && after.text === '(') {
      this.next();
      const key = this.next();
      if (key.kind !== 'word') this.fail(key, 'expected a label key inside has()');
      this.expectSymbol(')');
      return { op: 'has', key: key.text };
    }
    const key = token.text;
    const operator = this.next();
    if (operator.kind === 'symbol' && (operator.text === '==' || operator.text === '!=')) {
      return { op: operator.text === '==' ? 'eq' : 'ne', key, value: this.value() };
    }
    if (operator.kind === 'word' && operator.text === 'in') return { op: 'in', key, values: this.valueSet() };
    if (operator.kind === 'word' && operator.text === 'not') {
      const word = this.next();
      if (word.kind !== 'word' || word.text !== 'in') this.fail(word, 'expected "in" after "not"');
      return { op: 'notin', key, values: this.valueSet() };
    }
    if (operator.kind === 'word' && operator.text === 'contains') return { op: 'contains', key, value: this.value() };
    if (operator.kind === 'word' && (operator.text === 'starts' || operator.text === 'ends')) {
      const word = this.next();
      if (word.kind !== 'word' || word.text !== 'with') this.fail(word, `expected "with" after "${operator.text}"`);
      return { op: operator.text, key, value: this.value() };
    }
    return this.fail(operator, `expected ==, !=, in, not in, contains, starts with or ends with after ${JSON.stringify(key)}`);
  }

  private value(): string {
    const token = this.next();
    if (token.kind !== 'string') this.fail(token, 'expected a quoted value (\'v\' or "v")');
    return token.text;
  }

  private valueSet(): string[] {
    this.expectSymbol('{');
    const values: string[] = [];
    if (this.peek().kind === 'symbol' && this.peek().text === '}') {
      this.next();
      return values;
    }
    for (;;) {
      values.push(this.value());
      const token = this.next();
      if (token.kind === 'symbol' && token.text === '}') return values;
      if (token.kind !== 'symbol' || token.text !== ',') this.fail(token, 'expected "," or "}" in the value set');
    }
  }
}

function evaluate(node: Node, labels: Readonly<Record<string, string>>): boolean {
  switch (node.op) {
    case 'all':
      return true;
    case 'has':
      return Object.hasOwn(labels, node.key);
    case 'eq':
      return labels[node.key] === node.value;
    case 'ne':
      return labels[node.key] !== node.value;
    case 'contains':
      return labels[node.key]?.includes(node.value) ?? false;
    case 'starts':
      return labels[node.key]?.startsWith(node.value) ?? false;
    case 'ends':
      return labels[node.key]?.endsWith(node.value) ?? false;
    case 'in': {
      const value = labels[node.key];
      return value !== undefined && node.values.includes(value);
    }
    case 'notin': {
      const value = labels[node.key];
      return value === undefined || !node.values.includes(value);
    }
    case 'not':
      return !evaluate(node.operand, labels);
    case 'and':
      return node.operands.every((operand) => evaluate(operand, labels));
    case 'or':
      return node.operands.some((operand) => evaluate(operand, labels));
  }
}

function quote(value: string): string {
  return value.includes("'") ? `"${value}"` : `'${value}'`;
}

function print(node: Node): string {
  switch (node.op) {
    case 'all':
      return 'all()';
    case 'has':
      return `has(${node.key})`;
    case 'eq':
      return `${node.key} == ${quote(node.value)}`;
    case 'ne':
      return `${node.key} != ${quote(node.value)}`;
    case 'contains':
      return `${node.key} contains ${quote(node.value)}`;
    case 'starts':
      return `${node.key} starts with ${quote(node.value)}`;
    case 'ends':
      return `${node.key} ends with ${quote(node.value)}`;
    case 'in':
      return `${node.key} in {${node.values.map(quote).join(', ')}}`;
    case 'notin':
      return `${node.key} not in {${node.values.map(quote).join(', ')}}`;
    case 'not':
      return `!${node.operand.op === 'and' || node.operand.op === 'or' ? `(${print(node.operand)})` : print(node.operand)}`;
    case 'and':
    case 'or':
      return node.operands.map((o) => (o.op === 'or' && node.op === 'and' ? `(${print(o)})` : print(o))).join(node.op === 'and' ? ' && ' : ' || ');
  }
}

/**
 * Parses a Calico selector; the empty string selects everything, as in
 * Calico. Throws a {@link CalicoSelectorError} that says where and why.
 */
export function parseCalicoSelector(source: string): CalicoSelector {
  const tree: Node = source.trim() === '' ? { op: 'all' } : new Parser(source, lex(source)).parse();
  return { matches: (labels) => evaluate(tree, labels), text: print(tree) };
}
