// validate.mjs checks Larder's AsyncAPI document with the AsyncAPI project's own parser,
// then checks that every example in it, and every golden message in protocol/testdata,
// is valid against the payload schema of its message (the parser does not check AsyncAPI 3
// examples itself), and that the schemas reject the invalid messages of
// protocol/testdata/invalid/cases.json.
//
// Usage: node validate.mjs path/to/asyncapi.yaml [testdata-dir]
// The testdata directory defaults to testdata/ beside the document. Exits 1 on any
// diagnostic of severity error, any invalid example or golden, or a golden of a type the
// document has no message for.

import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';

const severityName = {
  [DiagnosticSeverity.Error]: 'error',
  [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'info',
  [DiagnosticSeverity.Hint]: 'hint',
};

async function main() {
  const [file, testdataArg] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node validate.mjs path/to/asyncapi.yaml [testdata-dir]');
    return 2;
  }
  const source = path.resolve(file);
  const text = await readFile(source, 'utf8');
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(text, { source });

  let errors = 0;
  for (const d of diagnostics) {
    const sev = severityName[d.severity] ?? String(d.severity);
    if (d.severity === DiagnosticSeverity.Error) errors++;
    const where = d.path && d.path.length ? d.path.join('.') : '(document)';
    const line = d.range ? `:${d.range.start.line + 1}` : '';
    console.log(`${file}${line}: ${sev}: ${d.code}: ${d.message} at ${where}`);
  }
  if (!document || errors > 0) {
    console.log(`${file}: ${errors} error(s)`);
    return 1;
  }

  // Schemas as the parser resolved them ($refs inlined), keyed by message name (= type).
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const validators = new Map();
  for (const msg of document.allMessages()) {
    const name = msg.name();
    if (!name) {
      console.log(`${file}: error: message ${msg.id()} has no name (its envelope type)`);
      errors++;
      continue;
    }
    validators.set(name, ajv.compile(msg.payload().json()));
  }

  const check = (label, type, payload) => {
    const validate = validators.get(type);
    if (!validate) {
      console.log(`${label}: error: no message named ${JSON.stringify(type)} in the document`);
      errors++;
      return;
    }
    if (!validate(payload)) {
      for (const e of validate.errors) {
        console.log(`${label}: error: ${e.instancePath || '(payload)'} ${e.message} ${JSON.stringify(e.params)}`);
      }
      errors++;
    }
  };

  let examples = 0;
  for (const msg of document.allMessages()) {
    for (const ex of msg.examples()) {
      examples++;
      check(`${file}: example ${msg.name()}/${ex.name() ?? '?'}`, msg.name(), ex.payload());
    }
  }

  const testdata = testdataArg ?? path.join(path.dirname(source), 'testdata');
  let goldens = 0;
  let names = [];
  try {
    names = (await readdir(testdata)).filter((n) => n.endsWith('.json')).sort();
  } catch (err) {
    if (testdataArg) throw err;
  }
  for (const n of names) {
    goldens++;
    const payload = JSON.parse(await readFile(path.join(testdata, n), 'utf8'));
    check(path.join(testdata, n), payload.type, payload);
  }

  // Messages every receiver must reject (testdata/invalid/cases.json, written by the Go
  // tests): the schema must reject each, unless the case says why it cannot.
  let invalid = 0;
  let blind = 0;
  let cases = [];
  try {
    cases = JSON.parse(await readFile(path.join(testdata, 'invalid', 'cases.json'), 'utf8'));
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  for (const c of cases) {
    if (c.schema_blind) {
      blind++;
      continue;
    }
    invalid++;
    const validate = validators.get(c.type);
    if (validate && validate(c.message)) {
      console.log(`invalid/cases.json: error: the schema of ${c.type} accepts "${c.name}", which receivers reject (field ${c.field})`);
      errors++;
    }
  }

  console.log(
    `${file}: ${diagnostics.length} diagnostic(s); ${examples} example(s) and ${goldens} golden file(s) valid; ` +
      `${invalid} invalid case(s) rejected, ${blind} beyond JSON Schema; ${errors} error(s)`,
  );
  return errors > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
