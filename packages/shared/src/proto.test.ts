import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { CONTRACT_JSON_PATH, PROTO_PATH, contractDefinition } from './proto.js';

// The built JSON must describe exactly the contract in proto/: every service method with its path and its
// request and response types, every message with its fields (numbers, types, labels), every enum with its values.
describe('the contract', () => {
  it('parsed at build time is the same as parsed from proto/slotctl.proto', () => {
    expect(existsSync(CONTRACT_JSON_PATH), 'the build writes it').toBe(true);
    // made from this very .proto: otherwise 'auto' would parse the .proto too, and the comparison prove nothing
    const built = JSON.parse(readFileSync(CONTRACT_JSON_PATH, 'utf8')) as { protoSha256: string };
    expect(built.protoSha256).toBe(createHash('sha256').update(readFileSync(PROTO_PATH)).digest('hex'));
    const fromJson = contractDefinition('auto');
    const text = contractDefinition('proto');
    expect(Object.keys(fromJson).sort()).toEqual(Object.keys(text).sort());
    expect(Object.keys(fromJson).length).toBeGreaterThan(50);
    const shape = (value: unknown): unknown => {
      const v = value as Record<string, unknown> & { format?: string; type?: unknown };
      if (v.format) return v.type; // a message or enum: its descriptor
      // a service: each method's path, streaming and type names
      return Object.fromEntries(Object.entries(v).map(([name, m]) => {
        const method = m as { path: string; requestStream: boolean; responseStream: boolean; requestType: { type: { name: string } }; responseType: { type: { name: string } } };
        return [name, [method.path, method.requestStream, method.responseStream, method.requestType.type.name, method.responseType.type.name]];
      }));
    };
    for (const key of Object.keys(text)) expect(shape(fromJson[key]), key).toEqual(shape(text[key]));
  });
});
