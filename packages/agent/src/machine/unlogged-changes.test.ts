import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@slotctl/shared';
import type { SlotSupervisor } from '../slot/supervisor.js';
import { MIN_FREE_BYTES, UnloggedStore } from '../sync/unlogged.js';
import { ownSyncLogFailure, UnloggedChanges } from './unlogged-changes.js';

const dirs: string[] = [];
const stores: UnloggedStore[] = [];
// A first mark saves without being awaited: the writes end before the directory goes (see unlogged.test.ts).
afterEach(async () => {
  for (const s of stores.splice(0)) await s.flush().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const slot = (name: string, role: 'MASTER' | 'REPLICA') =>
  ({ name, desired: { role, store: 's01', epoch: 4 }, layout: { syncDir: `/m/${name}/conf/sync`, imapdConf: `/m/${name}/imapd.conf`, metaPath: `/m/${name}` } }) as unknown as SlotSupervisor;

function setup(mailboxes = ['user.ann', 'user.ann.Later']) {
  const dir = mkdtempSync(join(tmpdir(), 'unlogged-changes-'));
  dirs.push(dir);
  const store = new UnloggedStore(dir);
  stores.push(store);
  const events: string[] = [];
  const logged: string[] = [];
  const changes = new UnloggedChanges(store, {
    log: createLogger('test', { level: 'silent' }),
    onChange: () => undefined,
    onEvent: (s, kind) => events.push(`${s} ${kind}`),
    catchUp: async () => undefined,
    deps: {
      listMailboxes: async () => mailboxes,
      logSync: async (_c, users, names) => void logged.push(...users, ...names),
      room: async () => ({ bytes: 10 * MIN_FREE_BYTES, inodes: 100 }),
      settleMs: 0,
    },
  });
  return { store, changes, events, logged };
}

const LINE = 'err lmtp[3]: write() to /m/s01-m1/conf/sync/log failed: No space left on device';

describe('UnloggedChanges', () => {
  it('takes only a failed write of the slot\'s own sync log as one', () => {
    expect(ownSyncLogFailure(slot('s01-m1', 'MASTER'), LINE)).toBe(true);
    expect(ownSyncLogFailure(slot('s02-m1', 'MASTER'), LINE)).toBe(false);
    expect(ownSyncLogFailure(slot('s01-m1', 'MASTER'), 'IOERROR: write failed: fname=</m/s01-m1/conf/quota/x>')).toBe(false);
  });

  it('marks a master once, reports it, and clears it after logging a sync of everything', async () => {
    const { changes, events, logged } = setup();
    const s = slot('s01-m1', 'MASTER');
    changes.noticed(s, LINE);
    changes.noticed(s, LINE);
    expect(events).toEqual(['s01-m1 sync-log-unwritable']);
    expect(changes.backlogOf('s01-m1', undefined)?.unloggedSince).toMatch(/^\d{4}-/);
    await changes.pass([s]);
    expect(logged).toEqual(['ann', 'user.ann', 'user.ann.Later']);
    expect(events).toEqual(['s01-m1 sync-log-unwritable', 's01-m1 sync-log-restored']);
    expect(changes.backlogOf('s01-m1', undefined)).toBeUndefined();
  });

  it('never clears the mark of a slot being demoted: its mailboxes go into its quarantine report instead', async () => {
    const { changes, logged } = setup();
    const s = slot('s01-m1', 'MASTER');
    changes.noticed(s, LINE);
    await changes.beginDemotion('s01-m1');
    expect(await changes.logFullSync(s)).toBe(false);
    expect(logged).toEqual([]);
    await changes.quarantine(s, s.layout!, 5);
    changes.demotionDone('s01-m1');
    const q = changes.quarantineOf('s01-m1', { dir: '/q', files: [], mailboxes: ['user.ben'] })!;
    expect(q.files).toEqual([expect.stringMatching(/^unlogged-since-/)]);
    expect(q.mailboxes).toEqual(['user.ann', 'user.ann.Later', 'user.ben']);
  });

  it('a mark read after the demotion: the replica reports a quarantine that is not empty, and the next pass lists it', async () => {
    const { changes } = setup();
    const s = slot('s01-m1', 'REPLICA');
    changes.noticed(s, LINE);
    expect(changes.quarantineOf('s01-m1', { dir: '/q', files: [], mailboxes: [] })!.files).toHaveLength(1);
    await changes.pass([s]);
    expect(changes.quarantineOf('s01-m1', { dir: '/q', files: [], mailboxes: [] })!.mailboxes).toEqual(['user.ann', 'user.ann.Later']);
  });

  it('a recovery clears the demoted mark only when it covered every mailbox the mark named; a removed slot forgets it', async () => {
    const { changes } = setup();
    const s = slot('s01-m1', 'REPLICA');
    changes.noticed(s, LINE);
    await changes.quarantine(s, s.layout!, 5);
    await changes.recovered('s01-m1', ['user.ann']);
    expect(changes.marked('s01-m1')).toBe(true);
    await changes.recovered('s01-m1', ['user.ann', 'user.ann.Later', 'user.zed']);
    expect(changes.marked('s01-m1')).toBe(false);
    changes.noticed(s, LINE);
    await changes.removed('s01-m1');
    expect(changes.marked('s01-m1')).toBe(false);
  });
});
