#!/usr/bin/env node
/*
 * What Microsoft's KQL parser (Kusto.Language, the npm bridge build tools/kql/validate.js loads) makes of
 * a query's `let` statements, for the binder's fuzz tests (tests/logs/test_kql_fuzz.py via
 * tests/support/kql_literals.py). A long-lived process: one JSON request per stdin line, {"text": "..."},
 * one JSON answer per stdout line:
 *   {"diagnostics": ["message", ...],            every syntax and semantic error and warning
 *    "statements": ["LetStatement", ...],         the kind of each top-level statement
 *    "lets": [{"name", "syntax", "type", "value"}]}
 * `syntax` is the let's expression node (LiteralExpression, DynamicExpression, PrefixUnaryExpression, ...);
 * `value` is the literal's value as the parser read it: a string's decoded text, a long or real as text,
 * a datetime or timespan as ticks (100 ns) in text, a dynamic literal's JSON text; null when not a literal.
 */
'use strict';

const readline = require('readline');

require('@kusto/language-service-next/bridge.min.js');
require('@kusto/language-service-next/Kusto.Language.Bridge.min.js');

const { Kusto, Bridge, System } = globalThis;
const L = Kusto.Language;

function shortName(node) {
  return Bridge.getTypeName(node).split('.').pop();
}

function literalValue(expression, type) {
  const value = expression.LiteralValue;
  if (value === null || value === undefined) return null;
  if (type === 'timespan') return value.ticks.toString();
  if (type === 'datetime') return System.DateTime.getTicks(Bridge.unbox(value)).toString();
  if (type === 'string') return value;
  return String(Bridge.unbox(value, true));
}

function inspect(text) {
  const code = L.KustoCode.ParseAndAnalyze(text, L.GlobalState.Default);
  const diagnostics = [];
  const found = code.GetDiagnostics();
  for (let i = 0; i < found.Count; i++) diagnostics.push(found.getItem(i).Message);
  const statements = [];
  const lets = [];
  for (let i = 0; i < code.Syntax.Statements.Count; i++) {
    const statement = code.Syntax.Statements.getItem(i).Element;
    statements.push(shortName(statement));
    if (shortName(statement) !== 'LetStatement') continue;
    const expression = statement.Expression;
    const type = expression.ResultType ? expression.ResultType.Name : null;
    let syntax = shortName(expression);
    let value = expression.IsLiteral ? literalValue(expression, type) : null;
    if (syntax === 'PrefixUnaryExpression' && expression.Expression.IsLiteral) {
      // "-5microseconds": a minus sign before one literal; its value, negated as text.
      const inner = literalValue(expression.Expression, type);
      syntax = `${expression.Operator.Text}${shortName(expression.Expression)}`;
      value = inner === null ? null : `${expression.Operator.Text}${inner}`;
    }
    lets.push({ name: statement.Name.SimpleName, syntax, type, value });
  }
  return { diagnostics, statements, lets };
}

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let answer;
  try {
    answer = inspect(JSON.parse(line).text);
  } catch (err) {
    answer = { error: String(err && err.stack ? err.stack : err) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
});
