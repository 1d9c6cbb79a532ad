// Validates an OpenAPI 3.1 document (default: the cloud's, cloud/http/openapi.json)
// against the official OpenAPI JSON schema with @seriousme/openapi-schema-validator, then
// checks what a schema cannot: every $ref resolves, operationIds are unique, every path
// parameter is declared. Exit status 0 = valid. Run by `make lint`:
//   cd tools/openapi && npm ci --no-audit --no-fund && node validate.mjs ../../cloud/http/openapi.json
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";

const file = process.argv[2] ?? "../../cloud/http/openapi.json";
const doc = JSON.parse(readFileSync(file, "utf8"));
const problems = [];

if (!/^3\.1\.\d+$/.test(doc.openapi ?? "")) {
  problems.push(`openapi is ${doc.openapi}, want 3.1.x`);
}

const validator = new Validator();
const res = await validator.validate(doc);
if (!res.valid) {
  for (const e of res.errors) problems.push(`schema: ${JSON.stringify(e)}`);
}

// Every local $ref must point at something.
const pointer = (p) =>
  p.replace(/^#\//, "").split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
    .reduce((o, k) => (o == null ? undefined : o[k]), doc);
(function walk(node, where) {
  if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${where}[${i}]`));
  if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string") {
        if (!v.startsWith("#/") || pointer(v) === undefined) problems.push(`${where}: unresolved $ref ${v}`);
      } else walk(v, `${where}.${k}`);
    }
  }
})(doc, "$");

const ids = new Set();
for (const [path, item] of Object.entries(doc.paths ?? {})) {
  const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
  for (const [method, op] of Object.entries(item)) {
    if (op.operationId) {
      if (ids.has(op.operationId)) problems.push(`duplicate operationId ${op.operationId}`);
      ids.add(op.operationId);
    }
    const declared = new Set((op.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name));
    for (const n of names) {
      if (!declared.has(n)) problems.push(`${method.toUpperCase()} ${path}: path parameter {${n}} not declared`);
    }
  }
}

if (problems.length) {
  console.error(`${file}: ${problems.length} problem(s)`);
  for (const p of problems) console.error("  " + p);
  process.exit(1);
}
console.log(`${file}: valid OpenAPI ${validator.version} (${ids.size} operations)`);
