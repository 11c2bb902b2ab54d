// Where one slot lives on disk. The meta path (small, fast disk) holds everything but the mail spool:
//
//   META/etc/imapd.conf, META/etc/cyrus.conf   rendered for the slot's current role
//   META/conf/                                 Cyrus configdirectory: mailboxes.db, sync/ (the sync logs), socket/…
//   META/meta/                                 metapartition-default: index, cache, header files
//   META/run/master.pid                        the slot's cyrmaster
//   META/quarantine/                           sync logs a returning old master had left (never deleted)
//   DATA/spool/                                partition-default: the messages (big, slow disk)
import { join } from 'node:path';

export interface SlotLayout {
  /** The slot's two roots (owned by cyrus): the agent acts below them only through slot/safe-fs.ts. */
  metaPath: string;
  dataPath: string;
  etcDir: string;
  imapdConf: string;
  cyrusConf: string;
  confDir: string;
  syncDir: string;
  metaPartition: string;
  dataPartition: string;
  runDir: string;
  pidFile: string;
  /** Sync logs a returning old master had left (sync/quarantine.ts). */
  quarantineDir: string;
}

export const CONF_SUBDIRS = ['db', 'proc', 'log', 'msg', 'user', 'quota', 'sieve', 'socket', 'sync', 'lock', 'ptclient'] as const;

export function slotLayout(dataPath: string, metaPath: string): SlotLayout {
  const confDir = join(metaPath, 'conf');
  return {
    metaPath,
    dataPath,
    etcDir: join(metaPath, 'etc'),
    imapdConf: join(metaPath, 'etc', 'imapd.conf'),
    cyrusConf: join(metaPath, 'etc', 'cyrus.conf'),
    confDir,
    syncDir: join(confDir, 'sync'),
    metaPartition: join(metaPath, 'meta'),
    dataPartition: join(dataPath, 'spool'),
    runDir: join(metaPath, 'run'),
    pidFile: join(metaPath, 'run', 'master.pid'),
    quarantineDir: join(metaPath, 'quarantine'),
  };
}
