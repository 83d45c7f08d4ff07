#!/usr/bin/env node
// Generates src/api/generated/models.json: OpenAPI v3 schemas (JSONSchemaProps)
// for every model interface in the TypeScript declarations that
// @kubevirt-ui-ext/kubevirt-api generates from KubeVirt's, CDI's and
// Kubernetes' OpenAPI documents. Runs before `tsc` in `npm run build`.
//
// Output shape (read by src/api/models.ts, which inlines it):
//   { source, models: { "<pkg>:<Interface>": schema }, names: { "<Interface>": "<pkg>:<Interface>" } }
// where a schema node may be `{ "$ref": "<pkg>:<Interface>", ...overrides }`.
//
// The declarations lose information the OpenAPI documents had; the rules
// below put back what Kubernetes' own schemas say (see the comments). It
// parses only syntax (no type checker) and takes a second or two.
//
// Usage: node scripts/gen-api.mjs [--out <file>]
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { newerFields } from './gen-api-newer-fields.mjs';

const started = performance.now();
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkgRoot = join(root, 'node_modules', '@kubevirt-ui-ext', 'kubevirt-api');
const outArg = process.argv.indexOf('--out');
const outFile = outArg > 0 ? process.argv[outArg + 1] : join(root, 'src', 'api', 'generated', 'models.json');

// Earlier packages win when a bare interface name exists in several.
const packages = [
  { id: 'kubevirt', dir: 'kubevirt' },
  { id: 'cdi', dir: 'containerized-data-importer' },
  { id: 'kubernetes', dir: 'kubernetes' },
];
const objectMetaKey = 'kubernetes:IoK8sApimachineryPkgApisMetaV1ObjectMeta';
const warnings = [];
const parsed = packages.map((p) => parsePackage(p));
const kubernetesInterfaces = parsed.find((p) => p.id === 'kubernetes').interfaces;

function main() {
  const pkgVersion = JSON.parse(readFileSync(join(pkgRoot, 'package.json'), 'utf8')).version;
  const models = {};
  const names = {};
  for (const pkg of parsed) {
    for (const name of pkg.interfaces.keys()) if (!pkg.jsonNames.has(name)) warnings.push(`${pkg.id}:${name}: no ToJSON function; JSON keys guessed`);
    for (const [name, decl] of pkg.interfaces) {
      const key = `${pkg.id}:${name}`;
      models[key] = interfaceSchema(pkg, name, decl);
      if (!(name in names)) names[name] = key;
    }
  }
  applyNewerFields(models);
  checkRefs(models);
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify({ source: `@kubevirt-ui-ext/kubevirt-api@${pkgVersion}`, models, names }));
  for (const w of warnings) console.warn(`gen-api: warning: ${w}`);
  const ms = Math.round(performance.now() - started);
  console.log(`gen-api: ${Object.keys(models).length} models -> ${outFile} (${ms} ms)`);
}

/** Parses one package's index.d.ts: model interfaces (those with a `<Name>FromJSON` function) and enum aliases. */
function parsePackage({ id, dir }) {
  const file = join(pkgRoot, 'dist', dir, 'index.d.ts');
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const candidates = new Map();
  const functions = new Set();
  const enumAliases = new Set();
  for (const stmt of source.statements) {
    if (ts.isInterfaceDeclaration(stmt)) candidates.set(stmt.name.text, stmt);
    else if (ts.isFunctionDeclaration(stmt) && stmt.name) functions.add(stmt.name.text);
    else if (ts.isTypeAliasDeclaration(stmt) && ts.isIndexedAccessTypeNode(stmt.type)) enumAliases.add(stmt.name.text);
    else if (ts.isEnumDeclaration(stmt)) enumAliases.add(stmt.name.text);
  }
  const interfaces = new Map();
  for (const [name, decl] of candidates) if (functions.has(`${name}FromJSON`)) interfaces.set(name, decl);
  return { id, text, interfaces, enumAliases, jsonNames: jsonNameMaps(dir) };
}

// The declarations name properties as TS identifiers (`vSOCKCID`, `_continue`,
// `xKubernetesIntOrString`); only the generated ToJSON functions know the
// JSON keys. The bundle's source map carries their TypeScript source.
function jsonNameMaps(dir) {
  const maps = new Map();
  const sourceMap = JSON.parse(readFileSync(join(pkgRoot, 'dist', dir, 'index.js.map'), 'utf8'));
  (sourceMap.sources ?? []).forEach((path, i) => {
    const text = sourceMap.sourcesContent?.[i];
    if (!text || !path.includes('/models/')) return;
    const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
    for (const stmt of source.statements) {
      const match = ts.isFunctionDeclaration(stmt) && stmt.name && /^(\w+?)ToJSON(Typed)?$/.exec(stmt.name.text);
      const param = match && stmt.parameters[0]?.name;
      if (!match || !param || !ts.isIdentifier(param) || !stmt.body) continue;
      const names = objectLiteralNames(stmt.body, param.text);
      if (names) maps.set(match[1], names);
    }
  });
  return maps;
}

/** From `return { jsonKey: f(value.tsName), ... }`: tsName -> jsonKey. */
function objectLiteralNames(body, param) {
  let result;
  const visit = (node) => {
    if (result) return;
    if (ts.isReturnStatement(node) && node.expression && ts.isObjectLiteralExpression(node.expression)) {
      result = new Map();
      for (const prop of node.expression.properties) {
        if (!ts.isPropertyAssignment(prop)) continue;
        const tsName = accessedName(prop.initializer, param);
        const key = ts.isIdentifier(prop.name) || ts.isStringLiteral(prop.name) ? prop.name.text : undefined;
        if (tsName && key) result.set(tsName, key);
      }
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(body);
  return result;
}

function accessedName(expr, param) {
  let found;
  const visit = (node) => {
    if (found) return;
    if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === param) {
      found = node.name.text;
    } else if (ts.isElementAccessExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === param && ts.isStringLiteral(node.argumentExpression)) {
      found = node.argumentExpression.text;
    } else {
      ts.forEachChild(node, visit);
    }
  };
  visit(expr);
  return found;
}

/** The text of the JSDoc block right before `node`, without its tags (`@type`, `@memberof`). */
function jsDoc(text, node) {
  const ranges = ts.getLeadingCommentRanges(text, node.pos) ?? [];
  const last = ranges.filter((r) => text.startsWith('/**', r.pos)).pop();
  if (!last) return '';
  const lines = text
    .slice(last.pos + 3, last.end - 2)
    .split('\n')
    .map((l) => l.replace(/^\s*\* ?/, '').trimEnd());
  const desc = [];
  for (const line of lines) {
    if (line.trimStart().startsWith('@')) break;
    desc.push(line);
  }
  return desc.join('\n').replace(/\n{3,}/g, '\n\n').trim();
}

/** The JSON key of a model's property: from its ToJSON function, else by undoing the generator's renaming. */
function jsonName(pkg, model, tsName) {
  const known = pkg.jsonNames.get(model)?.get(tsName);
  if (known) return known;
  if (pkg.jsonNames.has(model)) warnings.push(`${pkg.id}:${model}.${tsName}: not in its ToJSON function`);
  if (/^x[A-Z]/.test(tsName)) return tsName.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const reserved = /^_(default|enum|continue|int|break|case|class|const|delete|do|else|export|extends|for|function|if|import|in|new|return|super|switch|this|throw|try|typeof|var|void|while|with)$/;
  return reserved.test(tsName) ? tsName.slice(1) : tsName;
}

function memberName(member) {
  const n = member.name;
  return ts.isIdentifier(n) || ts.isStringLiteral(n) || ts.isNumericLiteral(n) ? n.text : '';
}

function interfaceSchema(pkg, name, decl) {
  const schema = { type: 'object' };
  const description = jsDoc(pkg.text, decl);
  if (description) schema.description = description;
  const members = decl.members.filter(ts.isPropertySignature);
  const memberNames = new Set(members.map((m) => jsonName(pkg, name, memberName(m))));
  // A top-level kind's metadata is a full ObjectMeta; a nested one (a template's) is what KubeVirt's CRDs declare: nullable and open.
  const topLevel = memberNames.has('apiVersion') && memberNames.has('kind') && memberNames.has('metadata');
  const properties = {};
  const required = [];
  for (const member of members) {
    const prop = jsonName(pkg, name, memberName(member));
    const doc = jsDoc(pkg.text, member);
    let node = member.type ? typeSchema(pkg, member.type, { prop, owner: name, description: doc }) : preserve();
    if (prop === 'metadata' && node.$ref === objectMetaKey && !topLevel) {
      node = { ...node, nullable: true, 'x-kubernetes-preserve-unknown-fields': true };
    }
    if (doc) node.description = doc;
    properties[prop] = node;
    // Go's OpenAPI marks fields without omitempty as required; a kind's status and
    // metadata are the server's to fill in, never required of a client.
    if (!member.questionToken && !(topLevel && (prop === 'status' || prop === 'metadata'))) required.push(prop);
  }
  restoreDroppedProperties(pkg, name, properties);
  if (Object.keys(properties).length > 0) schema.properties = properties;
  if (required.length > 0) schema.required = required;
  return schema;
}

// openapi-generator drops properties whose OpenAPI `type` is a list. In
// KubeVirt's document those are only its conditions' timestamps
// (`type: [string, null]`); core types are taken from the Kubernetes package.
function restoreDroppedProperties(pkg, name, properties) {
  if (pkg.id !== 'kubevirt' || !/Condition$/.test(name) || !properties.type || !properties.status) return;
  for (const prop of ['lastProbeTime', 'lastTransitionTime']) {
    if (!(prop in properties)) properties[prop] = { type: 'string', format: 'date-time', nullable: true };
  }
}

function preserve() {
  return { 'x-kubernetes-preserve-unknown-fields': true };
}

const intOrString = () => ({ 'x-kubernetes-int-or-string': true });
// Kubernetes' quantity grammar (see resource.Quantity), as CRDs generated by controller-gen carry it.
const quantityPattern = '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';
const quantity = () => ({ 'x-kubernetes-int-or-string': true, pattern: quantityPattern });
// Map fields whose values are Quantities (core/v1 ResourceList and KubeVirt's copies of it).
const quantityMaps = new Set(['requests', 'limits', 'capacity', 'allocatable', 'hard', 'used', 'overhead', 'allocatedResources']);
const limitRangeQuantityMaps = new Set(['min', 'max', 'default', 'defaultRequest', 'maxLimitRequestRatio']);

function typeSchema(pkg, node, ctx) {
  switch (node.kind) {
    case ts.SyntaxKind.StringKeyword:
      return stringSchema(ctx.description);
    case ts.SyntaxKind.NumberKeyword:
      return { type: numberType(ctx) };
    case ts.SyntaxKind.BooleanKeyword:
      return { type: 'boolean' };
    case ts.SyntaxKind.ObjectKeyword:
    case ts.SyntaxKind.AnyKeyword:
    case ts.SyntaxKind.UnknownKeyword:
      // `object` is what the generator emits for schemas without a type (RawExtension, JSON): any value.
      return preserve();
    case ts.SyntaxKind.ArrayType:
      return { type: 'array', items: typeSchema(pkg, node.elementType, { ...ctx, description: '' }) };
    case ts.SyntaxKind.LiteralType:
      return ts.isStringLiteral(node.literal) ? { type: 'string' } : preserve();
    case ts.SyntaxKind.ParenthesizedType:
      return typeSchema(pkg, node.type, ctx);
    case ts.SyntaxKind.TypeLiteral:
      return typeLiteralSchema(pkg, node, ctx);
    case ts.SyntaxKind.UnionType:
      return unionSchema(pkg, node, ctx);
    case ts.SyntaxKind.TypeReference:
      return referenceSchema(pkg, node, ctx);
    default:
      warnings.push(`${pkg.id}:${ctx.owner}.${ctx.prop}: unsupported type ${ts.SyntaxKind[node.kind]}; accepting any value`);
      return preserve();
  }
}

function stringSchema(description) {
  if (/^(Time is a wrapper|MicroTime is version of Time)/.test(description)) {
    // metav1.Time marshals its zero value as null, so Kubernetes' data has nulls here.
    return { type: 'string', format: 'date-time', nullable: true };
  }
  if (description.startsWith('Quantity is a fixed-point')) return quantity();
  if (description.startsWith('IntOrString is a type')) return intOrString();
  return { type: 'string' };
}

// The declarations type every OpenAPI integer and number as `number`.
// Kubernetes' API conventions forbid floats, and KubeVirt's document has two
// (a QPS and a login time in fractional seconds), so a number is an integer
// unless its name or text says it is fractional.
function numberType({ prop, description }) {
  if (/^qps$/i.test(prop) || /fractional|floating[- ]point|\bfloat\b|\bdouble\b/i.test(description)) return 'number';
  return 'integer';
}

function typeLiteralSchema(pkg, node, ctx) {
  const index = node.members.find(ts.isIndexSignatureDeclaration);
  if (index && node.members.length === 1) {
    const quantityMap =
      quantityMaps.has(ctx.prop) || (limitRangeQuantityMaps.has(ctx.prop) && /LimitRange/.test(ctx.owner));
    const values =
      quantityMap && index.type.kind === ts.SyntaxKind.StringKeyword
        ? quantity()
        : typeSchema(pkg, index.type, { ...ctx, description: '' });
    return { type: 'object', additionalProperties: values };
  }
  warnings.push(`${pkg.id}:${ctx.owner}.${ctx.prop}: inline object type; accepting any object`);
  return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
}

function unionSchema(pkg, node, ctx) {
  const isNull = (t) => t.kind === ts.SyntaxKind.NullKeyword || (ts.isLiteralTypeNode(t) && t.literal.kind === ts.SyntaxKind.NullKeyword);
  const rest = node.types.filter((t) => !isNull(t) && t.kind !== ts.SyntaxKind.UndefinedKeyword);
  const nullable = rest.length < node.types.length;
  let schema;
  if (rest.every((t) => ts.isLiteralTypeNode(t) && ts.isStringLiteral(t.literal))) {
    // No enum: KubeVirt's CRDs do not restrict these values, so neither do we.
    schema = { type: 'string' };
  } else if (rest.length === 1) {
    schema = typeSchema(pkg, rest[0], ctx);
  } else {
    schema = preserve();
  }
  return nullable ? { ...schema, nullable: true } : schema;
}

function referenceSchema(pkg, node, ctx) {
  const name = ts.isIdentifier(node.typeName) ? node.typeName.text : node.typeName.right.text;
  const args = node.typeArguments ?? [];
  if (name === 'Array' && args.length === 1) {
    return { type: 'array', items: typeSchema(pkg, args[0], { ...ctx, description: '' }) };
  }
  if (name === 'Date') return { type: 'string', format: 'date-time', nullable: true };
  if (pkg.enumAliases.has(name)) {
    // Enum aliases come from Kubernetes' `+enum` markers, which KubeVirt's CRDs do not enforce.
    return { type: 'string' };
  }
  if (pkg.interfaces.has(name)) return { $ref: refKey(pkg.id, name) };
  warnings.push(`${pkg.id}:${ctx.owner}.${ctx.prop}: unknown type ${name}; accepting any value`);
  return preserve();
}

// KubeVirt's and CDI's documents carry copies of core/v1 and meta/v1 types,
// some of them lossy (openapi-generator dropped `port` from probes' httpGet).
// Kubernetes' own document is the authority for those, so refer to it.
const corePrefixes = {
  kubevirt: [
    ['K8sIoApimachineryPkgApisMetaV1', 'IoK8sApimachineryPkgApisMetaV1'],
    ['K8sIoApiCoreV1', 'IoK8sApiCoreV1'],
  ],
  cdi: [
    ['V1', 'IoK8sApimachineryPkgApisMetaV1'],
    ['V1', 'IoK8sApiCoreV1'],
  ],
};

function refKey(pkgId, name) {
  for (const [from, to] of corePrefixes[pkgId] ?? []) {
    if (!name.startsWith(from) || /^V1(alpha|beta)\d/.test(name)) continue;
    const candidate = to + name.slice(from.length);
    if (kubernetesInterfaces.has(candidate)) return `kubernetes:${candidate}`;
  }
  return `${pkgId}:${name}`;
}

// Every package's copy of a type gets the fields it lacks; a field the package
// has in all copies is reported so the table only shrinks.
function applyNewerFields(models) {
  for (const [model, fields] of Object.entries(newerFields)) {
    const copies = packages.map((p) => models[`${p.id}:${model}`]).filter(Boolean);
    if (copies.length === 0) warnings.push(`newer fields for ${model}: no such model`);
    for (const [prop, propSchema] of Object.entries(fields)) {
      const lacking = copies.filter((schema) => !(prop in (schema.properties ?? {})));
      if (copies.length > 0 && lacking.length === 0) warnings.push(`${model}.${prop} is now in the package; remove it from newerFields`);
      for (const schema of lacking) {
        schema.properties ??= {};
        schema.properties[prop] = structuredClone(propSchema);
      }
    }
  }
}

function checkRefs(models) {
  const visit = (node, where) => {
    if (node === null || typeof node !== 'object') return;
    if (typeof node.$ref === 'string' && !(node.$ref in models)) {
      warnings.push(`${where}: dangling reference ${node.$ref}`);
    }
    for (const v of Object.values(node)) visit(v, where);
  };
  for (const [key, schema] of Object.entries(models)) visit(schema, key);
}

main();
