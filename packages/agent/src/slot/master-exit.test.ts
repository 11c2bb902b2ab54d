import { mkdtempSync, rmSync, writeFileSync, writeSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SlotLogs } from '../logs/slot-logs.js';
import { exitWords } from '../logs/syslog-format.js';
import { describeExit, exitStatus, masterOutputTail, openMasterOutput } from './master-exit.js';

describe('a cyrmaster that exited unasked', () => {
  it('is described with the meaning of its exit code, how long it ran and its words', () => {
    expect(exitStatus(78, undefined)).toBe('code 78 (EX_CONFIG: its configuration is missing, unreadable or wrong)');
    expect(exitStatus(1, undefined)).toBe('code 1');
    expect(exitStatus(undefined, 'SIGKILL')).toBe('signal SIGKILL');
    expect(describeExit({ code: 78, signal: undefined, ranMs: 312, stderr: [], log: ["master: can't open configuration file /m/etc/imapd.conf: Permission denied"] })).toBe(
      "cyrmaster exited with code 78 (EX_CONFIG: its configuration is missing, unreadable or wrong) after 0.3 s: master: can't open configuration file /m/etc/imapd.conf: Permission denied",
    );
    expect(describeExit({ code: 75, signal: undefined, ranMs: 3_600_000, stderr: ['setpriv: failed'], log: [] })).toBe('cyrmaster exited with code 75 (EX_TEMPFAIL: a temporary failure) after 3600 s: setpriv: failed');
  });

  it("says the errors of its log lines (the one before 'exiting'), else its last line", () => {
    const lines = [
      '2026-12-04T16:34:20.001Z info master[5]: process started',
      "2026-12-04T16:34:20.002Z crit master[5]: can't open pidfile: Is a directory",
      '2026-12-04T16:34:20.003Z notice master[5]: exiting',
    ];
    expect(exitWords(lines)).toEqual(["master: can't open pidfile: Is a directory"]);
    expect(exitWords([lines[0]!, lines[2]!])).toEqual(['master: process started']);
    expect(exitWords([])).toEqual([]);
  });

  it("finds the master's lines before it had read its config (untagged, filed as other) by its PID, and the slot's since its start", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slotctl-exit-'));
    try {
      const start = Date.parse('2026-12-04T16:34:20.000Z');
      writeFileSync(join(dir, 'other.log'), ["2026-12-04T16:34:20.100Z crit master[41]: can't open configuration file /m/etc/imapd.conf: Permission denied", '2026-12-04T16:34:20.100Z crit master[42]: not ours', ''].join('\n'));
      writeFileSync(join(dir, 's1.log'), ['2026-12-04T16:00:00.000Z err imapd[7]: long before', '2026-12-04T16:34:20.200Z err master[41]: since', ''].join('\n'));
      expect(await new SlotLogs(dir).masterLines('s1', 41, start)).toEqual([
        "2026-12-04T16:34:20.100Z crit master[41]: can't open configuration file /m/etc/imapd.conf: Permission denied",
        '2026-12-04T16:34:20.200Z err master[41]: since',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps its output in a fresh file of its own at each start, and reads back its last lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slotctl-exit-'));
    try {
      let fd = openMasterOutput(join(dir, 'out'), 's1');
      writeSync(fd, 'old start\n');
      closeSync(fd);
      fd = openMasterOutput(join(dir, 'out'), 's1');
      writeSync(fd, 'one\n\ntwo\nthree\nfour\n');
      closeSync(fd);
      expect(readFileSync(join(dir, 'out', 's1.stderr'), 'utf8')).not.toContain('old start');
      expect(await masterOutputTail(join(dir, 'out'), 's1')).toEqual(['two', 'three', 'four']);
      expect(await masterOutputTail(join(dir, 'out'), 'none')).toEqual([]);
      expect(() => openMasterOutput(join(dir, 'out'), '../x')).toThrow(/cannot name a file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
