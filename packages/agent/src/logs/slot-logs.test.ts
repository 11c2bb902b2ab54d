import { appendFileSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SlotLogs } from './slot-logs.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'slot-logs-'));
  dirs.push(dir);
  const logs = new SlotLogs(dir);
  const seen: string[] = [];
  logs.follow((slot, line) => seen.push(`${slot} ${line}`), () => undefined, 60_000); // polled by hand here
  return { dir, logs, seen, file: join(dir, 's1.log') };
}

const FAILED = 'err lmtp[7]: write() to /m/conf/sync/log failed: No space left on device';

describe('SlotLogs follower', () => {
  it('reads every new line, however many, across its read chunks', async () => {
    const { logs, seen, file } = setup();
    writeFileSync(file, 'old line IOERROR: before tracking\n');
    logs.track('s1');
    // 4 MB of lines, the notable ones spread over many 256 KiB chunks
    const lines = Array.from({ length: 40_000 }, (_, i) => (i % 1000 === 999 ? `${FAILED} #${i}` : `info imapd[1]: ordinary line ${i} ${'x'.repeat(60)}`));
    appendFileSync(file, `${lines.join('\n')}\n`);
    await logs.poll();
    expect(seen).toHaveLength(40);
    expect(seen.every((l) => l.startsWith(`s1 ${FAILED} #`))).toBe(true);
    await logs.poll();
    expect(seen).toHaveLength(40); // nothing twice
  });

  it('resumes where a previous agent had read to: the lines written while no agent ran are read', async () => {
    const { dir, seen, file } = setup();
    writeFileSync(file, 'info: read by the agent before\n');
    const before = new SlotLogs(dir);
    before.track('s1');
    const position = before.positions().s1!;
    expect(position).toEqual({ ino: statSync(file).ino, offset: statSync(file).size });
    appendFileSync(file, `${FAILED} while no agent ran\n`);
    const after = new SlotLogs(dir);
    after.follow((slot, line) => seen.push(`${slot} ${line}`), () => undefined, 60_000);
    after.track('s1', position);
    await after.poll();
    expect(seen).toEqual([`s1 ${FAILED} while no agent ran`]);
  });

  it('reads a rotated log whole, and ignores a saved position of another file', async () => {
    const { logs, seen, file } = setup();
    writeFileSync(file, 'info: one\n');
    logs.track('s1', { ino: 1, offset: 999_999 }); // not this file: starts at its end
    await logs.poll();
    expect(seen).toEqual([]);
    renameSync(file, `${file}.1`);
    writeFileSync(file, `${FAILED} after rotation\n`);
    await logs.poll();
    expect(seen).toEqual([`s1 ${FAILED} after rotation`]);
    logs.stop();
  });
});
