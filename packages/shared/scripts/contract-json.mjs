// Build step: the gRPC contract (proto/slotctl.proto) as protobuf.js JSON, dist/contract.json. Every slotctl call,
// agent, lease worker and coordinator loads the contract at start; parsing the .proto text cost 0.3–0.7 s of CPU a
// process on a busy host, reading this JSON about a third of that. proto.ts falls back to the .proto when this file
// is missing or older than it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const proto = fileURLToPath(new URL('../../../proto/slotctl.proto', import.meta.url));
const out = fileURLToPath(new URL('../dist/contract.json', import.meta.url));
const root = protobuf.loadSync(proto);
mkdirSync(fileURLToPath(new URL('../dist/', import.meta.url)), { recursive: true });
writeFileSync(out, JSON.stringify(root.toJSON({ keepComments: false })));
