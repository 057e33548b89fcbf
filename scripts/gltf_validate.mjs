#!/usr/bin/env node
// Validate glTF 2.0 files (.glb or .gltf) with the Khronos glTF validator and print its JSON report.
//
//   node scripts/gltf_validate.mjs FILE...     (install the validator first: `make tools`)
//
// One file: its report (the validator's JSON: issues.numErrors, numWarnings, messages, info). Several: a JSON list
// of reports, each with its "uri". Exit status 0 when no file has errors, 1 when one has, 2 on a usage error or
// when the validator is not installed. External buffers of a .gltf are read from beside it.
import { readFileSync, readFile } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
let validator;
try {
    validator = createRequire(resolve(root, ".tools", "package.json"))("gltf-validator");
} catch (e) {
    console.error(`gltf-validator is not installed (${e.code || e.message}): run \`make tools\` ` +
                  "(npm install --prefix .tools gltf-validator@2.0.0-dev.3.10)");
    process.exit(2);
}
const files = process.argv.slice(2);
if (files.length === 0) {
    console.error("usage: node scripts/gltf_validate.mjs FILE.glb [FILE.gltf ...]");
    process.exit(2);
}

async function validate(file) {
    const bytes = new Uint8Array(readFileSync(file));
    return validator.validateBytes(bytes, {
        uri: file,
        maxIssues: 100,
        externalResourceFunction: (uri) => new Promise((ok, fail) => {
            readFile(resolve(dirname(file), decodeURIComponent(uri)), (err, data) => err ? fail(err.toString()) : ok(data));
        }),
    });
}

const reports = [];
for (const file of files) {
    try {
        reports.push(await validate(file));
    } catch (e) {
        console.error(`${file}: the validator could not read it: ${e}`);
        process.exit(2);
    }
}
console.log(JSON.stringify(files.length === 1 ? reports[0] : reports, null, 1));
process.exit(reports.some((r) => r.issues.numErrors > 0) ? 1 : 0);
