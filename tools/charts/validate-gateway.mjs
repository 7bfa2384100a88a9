// Validate Gateway API objects (JSON list on stdin) against the Gateway API CRD schemas, as
// generated into @kubernetes-models/gateway-api. Prints one line per invalid object; exit 1 if any.
import { readFileSync } from "node:fs";

const docs = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const doc of docs) {
  const [group, version] = doc.apiVersion.split("/");
  const module = await import(`@kubernetes-models/gateway-api/${group}/${version}/${doc.kind}`);
  try {
    new module[doc.kind](doc).validate();
  } catch (e) {
    failed += 1;
    console.log(`${doc.kind} ${doc.metadata?.name}: ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
