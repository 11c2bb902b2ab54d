import { createLogger } from '@slotctl/shared';
import { describe, expect, it } from 'vitest';
import { NotifyListener } from '../../../../tools/notify-listener.js';
import { CoordinatorSystemd, coordinatorStatus } from './systemd.js';

describe('coordinator under systemd', () => {
  it('says what it serves: sqlite, or leading / following with etcd', () => {
    expect(coordinatorStatus('0.0.0.0:7400', 'sqlite', { leading: true, leader: undefined })).toBe('serving on 0.0.0.0:7400 (sqlite)');
    expect(coordinatorStatus('10.0.0.1:7400', 'etcd', { leading: true, leader: '10.0.0.1:7400' })).toBe('serving on 10.0.0.1:7400: leading (etcd)');
    expect(coordinatorStatus('10.0.0.1:7400', 'etcd', { leading: false, leader: '10.0.0.2:7400' })).toBe('serving on 10.0.0.1:7400: following, leader 10.0.0.2:7400 (etcd)');
    expect(coordinatorStatus('10.0.0.1:7400', 'etcd', { leading: false, leader: undefined })).toBe('serving on 10.0.0.1:7400: following, no leader elected yet (etcd)');
  });

  it('sends READY with its status, then STOPPING', async () => {
    const listener = await NotifyListener.start();
    try {
      const systemd = new CoordinatorSystemd(createLogger('t', { level: 'silent' }), listener.env());
      systemd.ready(() => 'serving on 127.0.0.1:7400 (sqlite)');
      expect(await listener.waitFor('READY=1')).toEqual(['READY=1', 'STATUS=serving on 127.0.0.1:7400 (sqlite)']);
      systemd.stopping('SIGTERM');
      expect(await listener.waitFor('STOPPING=1')).toEqual(['STOPPING=1', 'STATUS=stopping (SIGTERM)']);
    } finally {
      listener.stop();
    }
  });
});
