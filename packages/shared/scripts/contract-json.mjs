// Build step: the gRPC contract (proto/slotctl.proto) as protobuf.js JSON, dist/contract.json, with the SHA-256 of the
// .proto text it was made from. Every slotctl call, agent, lease worker and coordinator loads the contract at start;
// parsing the .proto text cost 0.3–0.7 s of CPU a process on a busy host, reading this JSON about a third of that.
// proto.ts uses it only while the hash matches the .proto (timestamps lie after tar, rsync -a or cp -p).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const proto = fileURLToPath(new URL('../../../proto/slotctl.proto', import.meta.url));
const out = fileURLToPath(new URL('../dist/contract.json', import.meta.url));
const protoSha256 = createHash('sha256').update(readFileSync(proto)).digest('hex');
try {
  if (JSON.parse(readFileSync(out, 'utf8')).protoSha256 === protoSha256) process.exit(0);
} catch {
  // missing or unreadable: written below
}
const root = protobuf.loadSync(proto);
mkdirSync(fileURLToPath(new URL('../dist/', import.meta.url)), { recursive: true });
writeFileSync(`${out}.tmp`, JSON.stringify({ protoSha256, root: root.toJSON({ keepComments: false }) }));
// renamed into place: a process starting meanwhile reads the old file or the new one, never half of one
renameSync(`${out}.tmp`, out);
