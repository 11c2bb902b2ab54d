// Golden files: the rendered configs are compared byte for byte with files under golden/, reviewed by hand.
// After a deliberate change, regenerate with UPDATE_GOLDEN=1 (ignored in CI, where a missing file fails) and
// review the diff.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expectGolden } from '../../../../test/support/golden.js';
import type { AppliedSlot } from '../state/apply-plan.js';
import { differsOnlyInReplication, renderSlotConfig, type RenderInput } from './render.js';

const golden = (name: string) => fileURLToPath(new URL(`./golden/${name}`, import.meta.url));

const check = (name: string, text: string): void => expectGolden(golden(name), text);

const desired: AppliedSlot = {
  store: 's01',
  role: 'MASTER',
  epoch: 4,
  slotIp: '127.0.21.1',
  serviceIp: '127.0.20.1',
  peerSlot: 's01-m2',
  peerIp: '127.0.22.1',
  dataPath: '/srv/hdd0/s01/data',
  metaPath: '/srv/ssd0/s01/meta',
};
const base: RenderInput = {
  slot: 's01-m1',
  desired,
  ports: { imap: 143, lmtp: 24, sync: 2005 },
  auth: { mode: 'sasldb', syncUser: 'repl', syncPassword: 'secret' },
};

describe('slot config rendering', () => {
  it('renders a master: sync log, rolling sync_client, IMAP and LMTP on the service IP', () => {
    const out = renderSlotConfig(base);
    check('master.imapd.conf', out.imapdConf);
    check('master.cyrus.conf', out.cyrusConf);
  });

  it('renders a replica: no sync log, no autocreate, sync_server on the slot IP', () => {
    const out = renderSlotConfig({ ...base, desired: { ...desired, role: 'REPLICA', slotIp: '127.0.22.1', peerIp: '127.0.21.1' } });
    check('replica.imapd.conf', out.imapdConf);
    check('replica.cyrus.conf', out.cyrusConf);
    expect(out.imapdConf).not.toMatch(/sync_log|autocreate/);
  });

  it('renders a master whose replica is being moved: a second sync log channel and its rolling sync_client', () => {
    const out = renderSlotConfig({ ...base, desired: { ...desired, moveTargetIp: '127.0.23.1' } });
    check('master-moving.imapd.conf', out.imapdConf);
    check('master-moving.cyrus.conf', out.cyrusConf);
    expect(differsOnlyInReplication(renderSlotConfig(base), out)).toBe(true);
    expect(differsOnlyInReplication(renderSlotConfig(base), renderSlotConfig({ ...base, desired: { ...desired, peerIp: '127.0.23.1' } }))).toBe(true);
    expect(differsOnlyInReplication(renderSlotConfig(base), renderSlotConfig({ ...base, desired: { ...desired, serviceIp: '127.0.20.9' } }))).toBe(false);
    expect(differsOnlyInReplication(renderSlotConfig(base), renderSlotConfig(base))).toBe(false);
  });

  it('renders test mode (any password) only when asked', () => {
    const out = renderSlotConfig({ ...base, auth: { ...base.auth, mode: 'test' } });
    expect(out.imapdConf).toContain('sasl_pwcheck_method: alwaystrue');
    expect(renderSlotConfig(base).imapdConf).not.toContain('alwaystrue');
  });

  it('passes -C to every command (children do not inherit it)', () => {
    for (const role of ['MASTER', 'REPLICA'] as const) {
      const conf = renderSlotConfig({ ...base, desired: { ...desired, role } }).cyrusConf;
      const commands = conf.match(/cmd="[^"]+"/g) ?? [];
      expect(commands.length, `${role} commands`).toBeGreaterThanOrEqual(3);
      for (const cmd of commands) expect(cmd).toContain('-C /srv/ssd0/s01/meta/etc/imapd.conf');
    }
  });

  it('writes IPv6 listen addresses in brackets', () => {
    const out = renderSlotConfig({ ...base, desired: { ...desired, slotIp: 'fd00::1', serviceIp: 'fd00::2' } });
    expect(out.cyrusConf).toContain('listen="[fd00::1]:143"');
  });
});
