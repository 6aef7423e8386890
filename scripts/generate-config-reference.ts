/**
 * Writes docs/configuration.md from src/config/config.ts, the one source of the configuration:
 * every environment variable is named by an `@env NAME — meaning` tag on the Config field it sets,
 * and its default and bounds are read from the reader call in loadConfig (str, int, url, token,
 * oneOf, postgresUrl). It fails when loadConfig reads a variable no tag names, or a tag names one it
 * never reads. `--check` writes nothing and fails when the page is not what it would write
 * (test/deploy/configuration-reference.test.ts runs it).
 *
 *   node --import tsx scripts/generate-config-reference.ts [--check]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { loadConfig } from '../src/config/config';

const ROOT = path.resolve(__dirname, '..');
const SOURCE = path.join(ROOT, 'src/config/config.ts');
const PAGE = path.join(ROOT, 'docs/configuration.md');

interface Variable {
  names: string[];
  meaning: string;
  field: string;
  fallback?: string;
  bounds?: string;
}

/** Readers of loadConfig: the index of the variable name and of its default among their arguments. */
const READERS: Record<string, { name: number; fallback: number; min?: number; max?: number }> = {
  str: { name: 1, fallback: 2 },
  url: { name: 1, fallback: 2 },
  token: { name: 1, fallback: 2 },
  oneOf: { name: 1, fallback: 2 },
  int: { name: 1, fallback: 2, min: 3, max: 4 },
  postgresUrl: { name: 0, fallback: 1 },
};

/** Local variables of loadConfig that hold a variable's value (`const natsStream = token(env, 'NATS_STREAM', …)`), by name. */
const locals = new Map<string, string>();

/**
 * A default as a reader of the page wants it: numbers evaluated, strings unquoted, a constant as
 * loadConfig resolves it (`resolved`), other expressions as written with locals named by their variable.
 */
function valueText(node: ts.Expression, source: ts.SourceFile, resolved?: unknown): string {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text === '' ? '(empty)' : node.text;
  if (ts.isIdentifier(node) && (typeof resolved === 'string' || typeof resolved === 'number')) return String(resolved);
  const joined = /^path\.join\((\w+), '([^']+)'\)$/.exec(node.getText(source));
  if (joined) return `<${locals.get(joined[1]!) ?? joined[1]}>/${joined[2]}`;
  const text = node.getText(source);
  if (/^[\d_\s*+()-]+$/.test(text)) return String(Function(`return (${text.replace(/_/g, '')});`)() as number);
  if (text === 'Number.MAX_SAFE_INTEGER') return String(Number.MAX_SAFE_INTEGER);
  const power = /^(\d+) \* 1024 \*\* (\d)$/.exec(text);
  if (power) return String(Number(power[1]) * 1024 ** Number(power[2]));
  return text.replace(/^`|`$/g, '').replace(/\$\{(\w+)\}/g, (_m, local: string) => `<${locals.get(local) ?? local}>`);
}

/** The name of the variable a reader call reads, when `node` is one. */
function readerCall(node: ts.Node): { call: ts.CallExpression; name: string } | undefined {
  if (!ts.isCallExpression(node) || !ts.isIdentifier(node.expression) || !READERS[node.expression.text]) return undefined;
  const name = node.arguments[READERS[node.expression.text]!.name];
  return name && ts.isStringLiteral(name) ? { call: node, name: name.text } : undefined;
}

function collect(): Variable[] {
  const source = ts.createSourceFile(SOURCE, readFileSync(SOURCE, 'utf8'), ts.ScriptTarget.Latest, true);
  const variables: Variable[] = [];
  const defaults = new Map<string, { fallback: string; bounds?: string }>();
  // What loadConfig makes of an empty environment: the values of defaults given by a constant or another module.
  const empty = loadConfig({}) as unknown as Record<string, unknown>;
  const fieldOf = new Map<string, string>();
  const visitLocals = (node: ts.Node): void => {
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer) {
      // The reader call, or one it is wrapped in (`path.resolve(str(env, 'DATA_DIR', '.data'))`).
      const initializer = node.initializer;
      const read = readerCall(initializer) ?? (ts.isCallExpression(initializer) && initializer.arguments[0] ? readerCall(initializer.arguments[0]) : undefined);
      if (read) locals.set(node.name.text, read.name);
    }
    if (ts.isPropertyAssignment(node) && ts.isIdentifier(node.name)) {
      const read = readerCall(node.initializer);
      if (read) fieldOf.set(read.name, node.name.text);
    }
    ts.forEachChild(node, visitLocals);
  };
  visitLocals(source);
  const visit = (node: ts.Node): void => {
    if (ts.isInterfaceDeclaration(node) && node.name.text === 'Config') {
      for (const member of node.members) {
        for (const tag of ts.getJSDocTags(member).filter((t) => t.tagName.text === 'env')) {
          const comment = ts.getTextOfJSDocComment(tag.comment) ?? '';
          const [names, meaning] = comment.split(' — ');
          if (!names || !meaning) throw new Error(`${member.name?.getText(source)}: an @env tag must read "NAME[, NAME…] — meaning"`);
          variables.push({ names: names.split(',').map((n) => n.trim()), meaning: meaning.replace(/\s+/g, ' ').trim(), field: member.name!.getText(source) });
        }
      }
    }
    const read = readerCall(node);
    if (read) {
      const reader = READERS[(read.call.expression as ts.Identifier).text]!;
      const fallback = read.call.arguments[reader.fallback];
      const min = reader.min === undefined ? undefined : read.call.arguments[reader.min];
      const max = reader.max === undefined ? undefined : read.call.arguments[reader.max];
      const field = fieldOf.get(read.name);
      if (fallback)
        defaults.set(read.name, {
          fallback: valueText(fallback, source, field ? empty[field] : undefined),
          bounds: min && max ? `${valueText(min, source)}–${valueText(max, source)}` : undefined,
        });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  for (const variable of variables) {
    const found = variable.names.length === 1 ? defaults.get(variable.names[0]!) : undefined;
    if (found) Object.assign(variable, found);
    // Read by another module's reader (Temporal's envconfig): the value loadConfig settles on.
    else if (variable.names.length === 1 && (typeof empty[variable.field] === 'string' || typeof empty[variable.field] === 'number'))
      variable.fallback = String(empty[variable.field]);
  }
  return variables;
}

/** The variables loadConfig reads, recorded by handing it a watching, empty environment. */
function variablesRead(): string[] {
  const read = new Set<string>();
  loadConfig(new Proxy({} as Record<string, string | undefined>, { get: (_target, key) => (typeof key === 'string' && read.add(key), undefined) }));
  return [...read];
}

const matches = (pattern: string, name: string) => new RegExp(`^${pattern.replace(/\*/g, '.*')}$`).test(name);

function check(variables: Variable[]): void {
  const tagged = variables.flatMap((v) => v.names);
  const read = variablesRead();
  const untagged = read.filter((name) => !tagged.some((pattern) => matches(pattern, name)));
  const unread = tagged.filter((pattern) => !pattern.includes('*') && !read.includes(pattern));
  if (untagged.length > 0) throw new Error(`loadConfig reads ${untagged.join(', ')}, which no @env tag of src/config/config.ts names`);
  if (unread.length > 0) throw new Error(`@env tags name ${unread.join(', ')}, which loadConfig never reads`);
}

const cell = (text: string) => text.replace(/\|/g, '\\|');

function render(variables: Variable[]): string {
  const rows = variables.map((v) => {
    const names = v.names.map((n) => `\`${n}\``).join(', ');
    const fallback = v.fallback === undefined ? 'unset' : `\`${v.fallback}\``;
    const bounds = v.bounds ? ` (${v.bounds})` : '';
    const meaning = v.fallback === undefined ? v.meaning.replace(/^unset: /, '') : v.meaning;
    return `| ${names} | ${cell(fallback)}${bounds} | ${cell(meaning)} |`;
  });
  return [
    '# Configuration reference',
    '',
    '<!-- Generated by scripts/generate-config-reference.ts from src/config/config.ts; do not edit. -->',
    '',
    'Every environment variable the API, the worker and the command-line tools read (`loadConfig`,',
    '`src/config/config.ts`), with its default and what it does. A value outside its bounds, or not',
    'of its kind, stops the start naming the variable. The fleet simulator (development only) reads',
    '`FLEET_*` of its own (`src/fleet-simulator/simulator-config.ts`). Deployment: `docs/deploy.md`.',
    '',
    '| variable | default (bounds) | meaning |',
    '|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

function main(): void {
  const variables = collect();
  check(variables);
  const page = render(variables);
  if (process.argv.includes('--check')) {
    const current = readFileSync(PAGE, 'utf8');
    if (current !== page) {
      console.error('docs/configuration.md is stale: run `node --import tsx scripts/generate-config-reference.ts`');
      process.exit(1);
    }
    return;
  }
  writeFileSync(PAGE, page);
  console.error(`wrote ${path.relative(ROOT, PAGE)} (${variables.length} rows)`);
}

main();
