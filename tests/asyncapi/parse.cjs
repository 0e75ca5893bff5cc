// Parse an AsyncAPI document (a file, or stdin) with the official parser and print its
// diagnostics as a JSON array: [{severity, code, message, path}]. Severity 0 is an error.
// Run with NODE_PATH=<dir>/node_modules, where scripts/asyncapi-parser installed the parser.
const fs = require("fs");
const { Parser } = require("@asyncapi/parser");

async function main() {
  const text = fs.readFileSync(process.argv[2] || 0, "utf8");
  const { diagnostics } = await new Parser().parse(text);
  const found = diagnostics.map((d) => ({
    severity: d.severity,
    code: d.code,
    message: d.message,
    path: d.path.join("/"),
  }));
  process.stdout.write(JSON.stringify(found));
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error));
  process.exit(2);
});
