#!/usr/bin/env node
/*
 * Validate .kql files with Microsoft's own KQL parser and semantic analyzer
 * (Kusto.Language, shipped to npm as the Bridge.NET build
 * @kusto/language-service-next), against the Log Analytics table schemas in
 * shared/logs/schemas/log_tables.json.
 *
 * Usage:
 *   node tools/kql/validate.js --schema shared/logs/schemas/log_tables.json a.kql b.kql ...
 *   echo '["a.kql", {"name": "inline", "text": "AppMetrics | take 1"}]' \
 *     | node tools/kql/validate.js --schema shared/logs/schemas/log_tables.json --stdin
 *
 * Options:
 *   --schema PATH    table schemas (required)
 *   --database NAME  database name the tables are declared in (default "workspace")
 *   --stdin          read a JSON array of file paths and/or {"name", "text"} objects
 *   --pretty         indent the JSON report
 *
 * Output: one JSON report on stdout (see buildReport below). Exit codes:
 *   0  no blocking diagnostic
 *   1  at least one blocking diagnostic
 *   2  usage error, unreadable input/schema, or the parser is not installed
 *
 * Blocking policy (decided here, mirrored by tests/support/kql_validation.py):
 *   - every Error blocks (syntax, unknown names, type errors);
 *   - every Warning blocks unless its category is Performance: Correctness
 *     warnings (join without kind, a `let` parameter shadowed by a column of
 *     the same name, isnull() on strings, ...) are real bugs in a query whose
 *     parameters are substituted at run time, and General warnings (unknown
 *     operator parameter, called function has errors) mean the query does not
 *     mean what it says;
 *   - Suggestion / Information and Performance warnings are reported, never block.
 * Two project rules are added with codes KQLV001/KQLV002 (see projectRules).
 *
 * Everything runs in one node process: loading the 4 MB minified bridge takes
 * ~0.2 s and the first analysis ~0.5 s (JIT + built-in symbol tables); each
 * later file takes a few milliseconds. Timings are in the report.
 */
'use strict';

const fs = require('fs');
const path = require('path');

const PARSER_PACKAGE = '@kusto/language-service-next';
const EXIT_OK = 0;
const EXIT_BLOCKING = 1;
const EXIT_USAGE = 2;

class UsageError extends Error {}

function parseArgs(argv) {
  const opts = { schema: null, database: 'workspace', stdin: false, pretty: false, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const needValue = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--schema') opts.schema = needValue();
    else if (arg === '--database') opts.database = needValue();
    else if (arg === '--stdin') opts.stdin = true;
    else if (arg === '--pretty') opts.pretty = true;
    else if (arg === '-h' || arg === '--help') opts.help = true;
    else if (arg === '--') opts.files.push(...argv.slice(i + 1)), (i = argv.length);
    else if (arg.startsWith('--')) throw new UsageError(`unknown option ${arg}`);
    else opts.files.push(arg);
  }
  if (opts.help) return opts;
  if (!opts.schema) throw new UsageError('--schema PATH is required');
  if (opts.stdin && opts.files.length) throw new UsageError('give files either as arguments or on --stdin, not both');
  return opts;
}

function loadParser() {
  const started = process.hrtime.bigint();
  try {
    // bridge.js defines the Bridge.NET runtime (global `Bridge`, `System`) that
    // the Kusto.Language build expects to find as globals. The minified build
    // is the same code and loads about 3x faster than the 16 MB readable one.
    require(`${PARSER_PACKAGE}/bridge.min.js`);
    require(`${PARSER_PACKAGE}/Kusto.Language.Bridge.min.js`);
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND') {
      throw new UsageError(
        `${PARSER_PACKAGE} is not installed (${err.message.split('\n')[0]}). ` +
          'Run `npm ci` in the repository root (or `make setup`).',
      );
    }
    throw err;
  }
  let version = 'unknown';
  try {
    version = require(`${PARSER_PACKAGE}/package.json`).version;
  } catch (_) {
    // Only used for the report header; the parser itself loaded fine.
  }
  return { Kusto: globalThis.Kusto, Bridge: globalThis.Bridge, version, ms: msSince(started) };
}

function msSince(started) {
  return Number(process.hrtime.bigint() - started) / 1e6;
}

function scalarTypes(Kusto) {
  const T = Kusto.Language.Symbols.ScalarTypes;
  // Explicit map rather than a lookup by name: an unknown type in the schema
  // must be a loud error, not silently become `unknown` (which type-checks
  // against everything and would hide real errors).
  return {
    string: T.String,
    datetime: T.DateTime,
    real: T.Real,
    double: T.Real,
    int: T.Int,
    long: T.Long,
    bool: T.Bool,
    boolean: T.Bool,
    dynamic: T.Dynamic,
    timespan: T.TimeSpan,
    guid: T.Guid,
    decimal: T.Decimal,
  };
}

function readSchema(schemaPath) {
  let raw;
  try {
    raw = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read schema ${schemaPath}: ${err.message}`);
  }
  const tables = [];
  const builtin = raw.builtin || {};
  const custom = raw.custom || {};
  for (const [name, columns] of Object.entries(builtin)) tables.push({ name, columns });
  for (const [name, spec] of Object.entries(custom)) tables.push({ name, columns: spec && spec.columns });
  if (!tables.length) throw new UsageError(`schema ${schemaPath} declares no tables (expected "builtin"/"custom")`);
  const seen = new Set();
  for (const t of tables) {
    if (seen.has(t.name)) throw new UsageError(`schema ${schemaPath}: table ${t.name} declared twice`);
    seen.add(t.name);
    if (!Array.isArray(t.columns) || !t.columns.length) {
      throw new UsageError(`schema ${schemaPath}: table ${t.name} has no column list`);
    }
  }
  return tables;
}

function buildGlobals(Kusto, tables, databaseName) {
  const S = Kusto.Language.Symbols;
  const types = scalarTypes(Kusto);
  const tableSymbols = tables.map((t) => {
    const columns = t.columns.map((c) => {
      const type = types[String(c.type).toLowerCase()];
      if (!type) {
        throw new UsageError(`schema: ${t.name}.${c.name} has unsupported type ${JSON.stringify(c.type)}`);
      }
      return new S.ColumnSymbol(c.name, type, null, null, null, null);
    });
    return new S.TableSymbol.$ctor4(t.name, columns);
  });
  // One database = one Log Analytics workspace; making it the default database
  // lets queries name tables unqualified, exactly as they do against the API.
  // GlobalState.Default carries the full built-in function/aggregate/operator
  // catalogue (ago, bin, parse_json, arg_max, make_list, ...).
  const database = new S.DatabaseSymbol.$ctor2(databaseName, null, tableSymbols);
  return Kusto.Language.GlobalState.Default.WithDatabase(database);
}

function listToArray(list) {
  const out = [];
  if (!list) return out;
  for (let i = 0; i < list.Count; i++) out.push(list.getItem(i));
  return out;
}

function isBlocking(severity, category) {
  if (severity === 'Error') return true;
  if (severity === 'Warning') return category !== 'Performance';
  return false;
}

// Rules the parser cannot know: each .kql file is sent to the Logs query API as
// a single request whose first result table the app reads.
function projectRules(Kusto, Bridge, code) {
  const found = [];
  if (code.Kind !== 'Query') {
    found.push({
      code: 'KQLV003', category: 'Correctness', severity: 'Error', start: 0, length: 0,
      message: `Only queries are allowed (this is a ${code.Kind}); Log Analytics does not run control commands.`,
    });
    return found;
  }
  const statements = listToArray(code.Syntax.Statements).map((s) => s.Element);
  const expressions = statements.filter((s) => Bridge.is(s, Kusto.Language.Syntax.ExpressionStatement));
  if (!expressions.length) {
    found.push({
      code: 'KQLV001', category: 'Correctness', severity: 'Error', start: 0, length: 0,
      message: 'The file contains no query expression (only comments, let or declare statements).',
    });
  } else if (expressions.length > 1) {
    const second = expressions[1];
    found.push({
      code: 'KQLV002', category: 'Correctness', severity: 'Warning',
      start: second.TextStart, length: second.Width,
      message: `The file has ${expressions.length} result statements; the app reads only the first result table.`,
    });
  }
  return found;
}

function analyze(Kusto, Bridge, globals, text) {
  const L = Kusto.Language;
  const code = L.KustoCode.ParseAndAnalyze(text, globals);
  // KustoCode.GetDiagnostics() covers syntax + semantics; the analyzers
  // (Correctness/Performance rules such as join-without-kind) only run through
  // the editor service.
  const service = new L.Editor.KustoCodeService.ctor(code);
  const raw = [...listToArray(code.GetDiagnostics()), ...listToArray(service.GetAnalyzerDiagnostics(true))].map(
    (d) => ({
      code: d.Code, category: d.Category, severity: d.Severity, message: d.Message,
      start: d.HasLocation ? d.Start : 0, length: d.HasLocation ? d.Length : 0,
    }),
  );
  raw.push(...projectRules(Kusto, Bridge, code));
  const position = (offset) => {
    const line = { v: 0 };
    const column = { v: 0 };
    // Kusto's own line/offset mapping (1-based both), so \r\n, \r and Unicode
    // line separators count exactly as the parser counts them.
    if (code.TryGetLineAndOffset(offset, line, column)) return [line.v, column.v];
    return [1, 1];
  };
  return raw
    .map((d) => {
      const [line, column] = position(d.start);
      const [endLine, endColumn] = position(d.start + d.length);
      return {
        severity: d.severity, category: d.category, code: d.code, message: d.message,
        line, column, end_line: endLine, end_column: endColumn, start: d.start, length: d.length,
        blocking: isBlocking(d.severity, d.category),
      };
    })
    .sort((a, b) => a.start - b.start || a.code.localeCompare(b.code));
}

function readInputs(opts) {
  let items = opts.files;
  if (opts.stdin) {
    let parsed;
    try {
      parsed = JSON.parse(fs.readFileSync(0, 'utf8'));
    } catch (err) {
      throw new UsageError(`stdin is not a JSON array: ${err.message}`);
    }
    if (!Array.isArray(parsed)) throw new UsageError('stdin must be a JSON array');
    items = parsed;
  }
  if (!items.length) throw new UsageError('no .kql files given');
  return items.map((item) => {
    if (typeof item === 'string') {
      let text;
      try {
        text = fs.readFileSync(item, 'utf8');
      } catch (err) {
        throw new UsageError(`cannot read ${item}: ${err.message}`);
      }
      return { path: item, text };
    }
    if (item && typeof item.name === 'string' && typeof item.text === 'string') {
      return { path: item.name, text: item.text };
    }
    throw new UsageError(`stdin item ${JSON.stringify(item)} is neither a path nor {"name", "text"}`);
  });
}

function main(argv) {
  const opts = parseArgs(argv);
  if (opts.help) {
    process.stdout.write(fs.readFileSync(__filename, 'utf8').split('*/')[0] + '*/\n');
    return EXIT_OK;
  }
  const inputs = readInputs(opts);
  const tables = readSchema(opts.schema);
  const parser = loadParser();
  const globals = buildGlobals(parser.Kusto, tables, opts.database);

  const analyzeStarted = process.hrtime.bigint();
  const files = inputs.map(({ path: file, text }) => {
    const fileStarted = process.hrtime.bigint();
    // A UTF-8 BOM is not KQL; editors on Windows add it and the service ignores it.
    const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
    const diagnostics = analyze(parser.Kusto, parser.Bridge, globals, body);
    const shift = body === text ? 0 : 1;
    for (const d of diagnostics) d.start += shift;
    return {
      path: file,
      ok: !diagnostics.some((d) => d.blocking),
      diagnostics,
      ms: Math.round(msSince(fileStarted) * 10) / 10,
    };
  });

  const ok = files.every((f) => f.ok);
  const report = {
    parser: `${PARSER_PACKAGE}@${parser.version}`,
    schema: opts.schema,
    database: opts.database,
    tables: tables.map((t) => t.name),
    policy: 'blocking = any Error, or a Warning whose category is not Performance',
    ok,
    timing_ms: {
      load_parser: Math.round(parser.ms),
      analyze_total: Math.round(msSince(analyzeStarted)),
    },
    files,
  };
  process.stdout.write(JSON.stringify(report, null, opts.pretty ? 2 : 0) + '\n');
  return ok ? EXIT_OK : EXIT_BLOCKING;
}

if (require.main === module) {
  let code;
  try {
    code = main(process.argv.slice(2));
  } catch (err) {
    // Any crash is exit 2, never 1: callers must not mistake a broken
    // validator for "the queries have errors" (or, worse, the reverse).
    process.stderr.write(`validate.js: ${err instanceof UsageError ? err.message : err.stack}\n`);
    code = EXIT_USAGE;
  }
  process.exitCode = code;
}

module.exports = { main, isBlocking, readSchema };
