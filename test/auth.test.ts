// Production auth (--auth sasldb): each slot checks passwords against its own sasldb, where the agent puts the
// replication user. Replication works with it, and a wrong password is refused.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster, waitFor } from '../tools/local-cluster.js';
import { removeDir, tempDir, twoMachineCluster } from './support/fixtures.js';
import { loopbackBlock } from './support/loopback-blocks.js';
import { expectSameMail } from './support/same-mail.js';
import { deliver, imapClient } from './support/mail.js';

const { net: NET, prefix: PREFIX } = loopbackBlock(import.meta.url);
const dir = tempDir('auth');
const cluster = new LocalCluster({ dir });
const passwordFile = join(dir, 'sync-password');

async function login(host: string, user: string, pass: string): Promise<boolean> {
  const client = imapClient(host, user, pass);
  try {
    await client.connect();
    await client.logout();
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  writeFileSync(passwordFile, 'correct horse battery staple\n', { mode: 0o600 });
  await cluster.bringUp(twoMachineCluster(dir, NET, PREFIX), ['m1', 'm2'], ['au01-m1', 'au01-m2', 'au02-m1', 'au02-m2'], { syncPasswordFile: passwordFile });
});

afterAll(async () => {
  await cluster.stopAll();
  removeDir(dir);
});

describe('production auth (sasldb)', () => {
  it('accepts the replication password and refuses a wrong one', async () => {
    expect(await login(`127.${NET}.2.1`, 'admin', 'correct horse battery staple')).toBe(true);
    expect(await login(`127.${NET}.2.1`, 'admin', 'wrong')).toBe(false);
    expect(await login(`127.${NET}.2.1`, 'nobody', 'anything')).toBe(false);
  });

  it('replicates with it: mail delivered to the master reaches the replica', async () => {
    await deliver(`127.${NET}.3.1`, 2003, [{ user: 'alice', subject: 'over sasldb' }]);
    // the replica has the mailbox: its admin (the replication user) sees it
    const replicaBoxes = async () => {
      const client = imapClient(`127.${NET}.2.1`, 'admin', 'correct horse battery staple');
      await client.connect();
      try {
        return (await client.list()).map((b) => b.path);
      } finally {
        await client.logout();
      }
    };
    await waitFor('user/alice on the replica', async () => ((await replicaBoxes()).includes('user/alice') ? true : undefined), 15_000, 200);
    // the same mail on both sides, read as alice through the replication user (SASL PLAIN with an authorization id)
    await expectSameMail([{ name: `${PREFIX}01`, master: `127.${NET}.3.1`, replica: `127.${NET}.2.1` }], { users: ['alice'], admin: { user: 'admin', pass: 'correct horse battery staple' } });
  });
});
