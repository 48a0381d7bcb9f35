// Validates rendered Kubernetes manifests offline, without an API server (kubeconform and kubeval are not packaged
// by npm or Debian): each object
//   1. against its JSON schema from the Kubernetes OpenAPI spec, as the npm package kubernetes-models ships it
//      (types, enums, formats, required fields), and
//   2. for unknown fields (a misspelt key that an API server would drop or refuse), which those schemas allow: the object
//      as a TypeScript literal of the package's interface type, compiled by tsc (excess property check).
// Usage: node validate.mjs <manifest.yaml>...   Prints one line per object; exit code 1 when any is invalid.
import { readFileSync, writeFileSync, mkdtempSync, symlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import * as yaml from "js-yaml";
import ts from "typescript";
import { Job } from "kubernetes-models/batch/v1";
import { PersistentVolumeClaim } from "kubernetes-models/v1";

// The kinds the manifest uses: model class, TypeScript interface and its module.
const kinds = {
  "batch/v1/Job": [Job, "IJob", "kubernetes-models/batch/v1/Job"],
  "v1/PersistentVolumeClaim": [PersistentVolumeClaim, "IPersistentVolumeClaim", "kubernetes-models/v1/PersistentVolumeClaim"],
};

const here = dirname(fileURLToPath(import.meta.url));
let failed = 0;
for (const file of process.argv.slice(2)) {
  const docs = yaml.loadAll(readFileSync(file, "utf8")).filter((d) => d !== null);
  const name = (d) => `${file}: ${d.kind} ${d.metadata?.name ?? "(no name)"}`;
  const typed = [];
  for (const d of docs) {
    const kind = kinds[`${d.apiVersion}/${d.kind}`];
    if (!kind) { console.log(`INVALID ${name(d)}: no schema here for ${d.apiVersion} ${d.kind}`); failed++; continue; }
    try { new kind[0](d).validate(); typed.push([d, kind]); }
    catch (e) { console.log(`INVALID ${name(d)}: ${e.message}`); failed++; }
  }
  // Unknown fields: one TypeScript constant per object (tsc reports the first excess property of each).
  const dir = mkdtempSync(join(tmpdir(), "contrastseg-k8s-"));
  try {
    symlinkSync(join(here, "node_modules"), join(dir, "node_modules"));
    const imports = [...new Set(typed.map(([, k]) => `import type { ${k[1]} } from "${k[2]}";`))];
    const constants = typed.map(([d, k], i) => `export const object${i}: ${k[1]} = ${JSON.stringify(d, null, 2)};`);
    const source = join(dir, "check.ts");
    writeFileSync(source, [...imports, ...constants].join("\n") + "\n");
    const program = ts.createProgram([source], { noEmit: true, strict: true, skipLibCheck: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext });
    const bad = new Set();
    for (const diag of ts.getPreEmitDiagnostics(program)) {
      const text = ts.flattenDiagnosticMessageText(diag.messageText, " ");
      const line = diag.file ? diag.file.getLineAndCharacterOfPosition(diag.start).line : -1;
      // The constant the diagnostic is in: the last "export const objectN" line at or above it.
      const lines = readFileSync(source, "utf8").split("\n");
      let i = line; while (i >= 0 && !lines[i].startsWith("export const object")) i--;
      const index = i >= 0 ? Number(lines[i].match(/object(\d+)/)[1]) : -1;
      console.log(`INVALID ${index >= 0 ? name(typed[index][0]) : file}: ${text}`);
      if (index >= 0) bad.add(index);
      failed++;
    }
    typed.forEach(([d], i) => { if (!bad.has(i)) console.log(`valid   ${name(d)}`); });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
process.exit(failed ? 1 : 0);
