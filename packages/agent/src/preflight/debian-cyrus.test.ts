import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { debianCyrusWarnings, findDebianCyrus, isDebianCyrusMaster } from './debian-cyrus.js';

describe("Debian's own Cyrus", () => {
  it("is a Cyrus master on the system's config, never a slot's", () => {
    expect(isDebianCyrusMaster(['/usr/sbin/cyrmaster'])).toBe(true);
    expect(isDebianCyrusMaster(['/usr/lib/cyrus/bin/master', '-d'])).toBe(true);
    expect(isDebianCyrusMaster(['/usr/sbin/cyrmaster', '-C', '/etc/imapd.conf', '-M', '/etc/cyrus.conf'])).toBe(true);
    expect(isDebianCyrusMaster(['/usr/lib/cyrus/bin/master', '-C', '/srv/x/etc/imapd.conf', '-M', '/etc/cyrus.conf'])).toBe(true);
    // a slot's master: its own -C and -M
    expect(isDebianCyrusMaster(['/usr/lib/cyrus/bin/master', '-C', '/srv/x/etc/imapd.conf', '-M', '/srv/x/etc/cyrus.conf', '-p', '/srv/x/run/master.pid', '-D'])).toBe(false);
    expect(isDebianCyrusMaster(['/usr/bin/postmaster'])).toBe(false);
    expect(isDebianCyrusMaster(['imapd', '-U', '30'])).toBe(false);
  });

  it('is found running (by its command line, or its PID file), with a warning naming the PID and the fix', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slotctl-debian-'));
    // a stand-in: a process whose program name is Debian's master (killed by its PID below)
    const child = execa('sleep', ['30'], { argv0: '/usr/sbin/cyrmaster', reject: false });
    const other = execa('sleep', ['30'], { argv0: '/usr/lib/cyrus/bin/master-not', reject: false });
    try {
      await new Promise((r) => setTimeout(r, 100));
      const found = await findDebianCyrus(join(dir, 'none.pid'));
      expect(found).toContainEqual({ pid: child.pid, command: '/usr/sbin/cyrmaster 30' });
      expect(found.map((p) => p.pid)).not.toContain(other.pid);
      const [warning] = debianCyrusWarnings(found.filter((p) => p.pid === child.pid));
      expect(warning).toBe(`Debian's own Cyrus is running (pid ${child.pid}: /usr/sbin/cyrmaster 30): it listens on the standard ports of every address and may take a slot's; stop it for good with systemctl mask --now cyrus-imapd`);
      // the PID file names a master with any arguments; a PID that is not a Cyrus master is not counted
      writeFileSync(join(dir, 'master.pid'), `${other.pid}\n`);
      expect((await findDebianCyrus(join(dir, 'master.pid'))).map((p) => p.pid)).not.toContain(other.pid);
    } finally {
      child.kill('SIGKILL');
      other.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
