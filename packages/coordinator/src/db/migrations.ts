// Numbered schema migrations. Each runs once, in its own transaction, and sets PRAGMA user_version to its number.
// Never edit a released migration: add a new one.

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'machines, stores, slots, operations, events',
    sql: `
      CREATE TABLE machines (
        name            TEXT PRIMARY KEY,
        address         TEXT NOT NULL UNIQUE,
        disks           TEXT NOT NULL DEFAULT '[]',
        drained         INTEGER NOT NULL DEFAULT 0,
        state           TEXT NOT NULL DEFAULT 'unknown' CHECK (state IN ('unknown', 'up', 'suspect', 'down')),
        state_since     TEXT NOT NULL,
        last_heartbeat  TEXT,
        agent_version   TEXT NOT NULL DEFAULT '',
        created_at      TEXT NOT NULL
      ) STRICT;

      CREATE TABLE stores (
        name            TEXT PRIMARY KEY,
        service_ip      TEXT NOT NULL UNIQUE,
        master_slot     TEXT NOT NULL REFERENCES slots(name) DEFERRABLE INITIALLY DEFERRED,
        replica_slot    TEXT NOT NULL REFERENCES slots(name) DEFERRABLE INITIALLY DEFERRED,
        epoch           INTEGER NOT NULL DEFAULT 1 CHECK (epoch >= 1),
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL,
        CHECK (master_slot <> replica_slot)
      ) STRICT;

      CREATE TABLE slots (
        name            TEXT PRIMARY KEY,
        store           TEXT NOT NULL REFERENCES stores(name) DEFERRABLE INITIALLY DEFERRED,
        machine         TEXT NOT NULL REFERENCES machines(name) DEFERRABLE INITIALLY DEFERRED,
        ip              TEXT NOT NULL UNIQUE,
        data_path       TEXT NOT NULL,
        meta_path       TEXT NOT NULL,
        observed_state  TEXT NOT NULL DEFAULT 'unknown',
        observed_role   TEXT NOT NULL DEFAULT '',
        epoch_applied   INTEGER NOT NULL DEFAULT 0,
        backlog         TEXT NOT NULL DEFAULT '{}',
        last_error      TEXT NOT NULL DEFAULT '',
        reported_at     TEXT,
        UNIQUE (machine, data_path),
        UNIQUE (machine, meta_path)
      ) STRICT;
      CREATE INDEX slots_by_machine ON slots(machine);
      CREATE INDEX slots_by_store ON slots(store);

      CREATE TABLE operations (
        id              TEXT PRIMARY KEY,
        kind            TEXT NOT NULL,
        store           TEXT,
        machine         TEXT,
        state           TEXT NOT NULL,
        step            TEXT NOT NULL DEFAULT '',
        params          TEXT NOT NULL DEFAULT '{}',
        error           TEXT NOT NULL DEFAULT '',
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
      ) STRICT;
      CREATE INDEX operations_by_store ON operations(store, state);

      CREATE TABLE events (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        at              TEXT NOT NULL,
        kind            TEXT NOT NULL,
        machine         TEXT,
        store           TEXT,
        slot            TEXT,
        epoch           INTEGER,
        op              TEXT,
        reason          TEXT NOT NULL,
        data            TEXT
      ) STRICT;
      CREATE INDEX events_by_at ON events(at);
      CREATE INDEX events_by_store ON events(store, id);
      CREATE INDEX events_by_machine ON events(machine, id);
    `,
  },
  {
    version: 2,
    description: 'slots: operator stop flag, start generation, pid, state reason, recent Cyrus log lines, replay request and result',
    sql: `
      ALTER TABLE slots ADD COLUMN admin_stopped INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE slots ADD COLUMN pid INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE slots ADD COLUMN state_reason TEXT NOT NULL DEFAULT '';
      ALTER TABLE slots ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE slots ADD COLUMN recent_log TEXT NOT NULL DEFAULT '[]';
      ALTER TABLE slots ADD COLUMN start_generation INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE slots ADD COLUMN replay_op TEXT NOT NULL DEFAULT '';
      ALTER TABLE slots ADD COLUMN replay_result TEXT NOT NULL DEFAULT '{}';
    `,
  },
  {
    version: 3,
    description: 'operations: parent, cancel flag, result; slots held by an operation, mailbox checks; one running operation per store',
    sql: `
      ALTER TABLE operations ADD COLUMN parent TEXT;
      ALTER TABLE operations ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE operations ADD COLUMN result TEXT NOT NULL DEFAULT '{}';
      ALTER TABLE operations ADD COLUMN step_since TEXT NOT NULL DEFAULT '';
      CREATE UNIQUE INDEX operations_one_per_store ON operations(store) WHERE store IS NOT NULL AND state IN ('pending', 'running');
      CREATE UNIQUE INDEX operations_one_drain_per_machine ON operations(machine) WHERE kind = 'drain' AND state IN ('pending', 'running');
      CREATE INDEX operations_by_state ON operations(state, created_at);
      CREATE INDEX operations_by_parent ON operations(parent);
      CREATE INDEX events_by_op ON events(op, id);
      ALTER TABLE slots ADD COLUMN op_hold TEXT NOT NULL DEFAULT '';
      ALTER TABLE slots ADD COLUMN check_op TEXT NOT NULL DEFAULT '';
      ALTER TABLE slots ADD COLUMN check_mailboxes TEXT NOT NULL DEFAULT '[]';
      ALTER TABLE slots ADD COLUMN check_result TEXT NOT NULL DEFAULT '{}';
      ALTER TABLE slots ADD COLUMN sync_confirmed_epoch INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 4,
    description: 'machine loss: slots held stopped until their unreplicated changes are recovered, recovery requests and results; at-risk records',
    sql: `
      ALTER TABLE slots ADD COLUMN recovery_hold TEXT NOT NULL DEFAULT '';
      ALTER TABLE slots ADD COLUMN quarantine TEXT NOT NULL DEFAULT '{}';
      ALTER TABLE slots ADD COLUMN recover_listen TEXT NOT NULL DEFAULT '';
      ALTER TABLE slots ADD COLUMN recover_op TEXT NOT NULL DEFAULT '';
      ALTER TABLE slots ADD COLUMN recover_target_slot TEXT NOT NULL DEFAULT '';
      ALTER TABLE slots ADD COLUMN recover_mailboxes TEXT NOT NULL DEFAULT '[]';
      ALTER TABLE slots ADD COLUMN recover_result TEXT NOT NULL DEFAULT '{}';
      ALTER TABLE slots ADD COLUMN recover_listening TEXT NOT NULL DEFAULT '';
      CREATE TABLE at_risk (
        id              INTEGER PRIMARY KEY,
        store           TEXT NOT NULL REFERENCES stores(name) ON DELETE CASCADE,
        slot            TEXT NOT NULL,
        machine         TEXT NOT NULL,
        op              TEXT NOT NULL,
        epoch           INTEGER NOT NULL,
        created_at      TEXT NOT NULL,
        backlog         TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('open', 'recovering', 'recovered', 'nothing-lost')),
        mailboxes       TEXT NOT NULL DEFAULT '[]',
        result          TEXT NOT NULL DEFAULT '{}',
        closed_at       TEXT
      ) STRICT;
      CREATE INDEX at_risk_by_store ON at_risk(store, id);
      CREATE UNIQUE INDEX at_risk_one_open_per_slot ON at_risk(slot) WHERE state IN ('open', 'recovering');
    `,
  },
  {
    version: 5,
    description: 'placement: machine slot capacity, rack and retirement; full initial sync of new replicas; the slots a retired machine held',
    sql: `
      ALTER TABLE machines ADD COLUMN slot_capacity INTEGER NOT NULL DEFAULT 18 CHECK (slot_capacity >= 1);
      ALTER TABLE machines ADD COLUMN rack TEXT NOT NULL DEFAULT '';
      ALTER TABLE machines ADD COLUMN retired_at TEXT NOT NULL DEFAULT '';
      ALTER TABLE slots ADD COLUMN seed_op TEXT NOT NULL DEFAULT '';
      ALTER TABLE slots ADD COLUMN seed_result TEXT NOT NULL DEFAULT '{}';
      ALTER TABLE slots ADD COLUMN seeding TEXT NOT NULL DEFAULT '';
      CREATE TABLE retired_slots (
        id              INTEGER PRIMARY KEY,
        name            TEXT NOT NULL,
        store           TEXT NOT NULL,
        machine         TEXT NOT NULL,
        ip              TEXT NOT NULL,
        data_path       TEXT NOT NULL,
        meta_path       TEXT NOT NULL,
        replaced_by     TEXT NOT NULL,
        op              TEXT NOT NULL,
        retired_at      TEXT NOT NULL
      ) STRICT;
      CREATE INDEX retired_slots_by_machine ON retired_slots(machine);
      CREATE UNIQUE INDEX operations_one_rebalance ON operations(kind) WHERE kind = 'rebalance' AND state IN ('pending', 'running');
    `,
  },
  {
    version: 6,
    description: 'per-slot cleanup (cyr_expire): requests, results, schedule, history; partitions as agents measure them; cluster settings',
    sql: `
      ALTER TABLE slots ADD COLUMN cleanup_op TEXT NOT NULL DEFAULT '';
      ALTER TABLE slots ADD COLUMN cleanup_started_at TEXT NOT NULL DEFAULT '';
      ALTER TABLE slots ADD COLUMN cleanup_requested TEXT NOT NULL DEFAULT '';
      ALTER TABLE slots ADD COLUMN cleanup_next_at TEXT NOT NULL DEFAULT '';
      ALTER TABLE slots ADD COLUMN cleanup_result TEXT NOT NULL DEFAULT '{}';
      ALTER TABLE slots ADD COLUMN partitions TEXT NOT NULL DEFAULT '[]';
      CREATE TABLE cleanup_runs (
        id              INTEGER PRIMARY KEY,
        slot            TEXT NOT NULL,
        store           TEXT NOT NULL,
        machine         TEXT NOT NULL,
        op              TEXT NOT NULL UNIQUE,
        requested_by    TEXT NOT NULL,
        started_at      TEXT NOT NULL,
        finished_at     TEXT NOT NULL,
        ok              INTEGER NOT NULL,
        exit_code       INTEGER NOT NULL,
        ms              INTEGER NOT NULL,
        freed_bytes     INTEGER NOT NULL,
        error           TEXT NOT NULL,
        tail            TEXT NOT NULL
      ) STRICT;
      CREATE INDEX cleanup_runs_by_slot ON cleanup_runs(slot, id);
      CREATE INDEX cleanup_runs_by_machine ON cleanup_runs(machine, id);
      CREATE TABLE settings (
        key             TEXT PRIMARY KEY,
        value           TEXT NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 7,
    description: 'reports that change nothing write no slot row (their time goes to slot_reports); indexes for the checks that run many times a second (a slot row carries its reports: a scan of 18,000 took 100 ms)',
    sql: `
      ALTER TABLE slots ADD COLUMN report_digest TEXT NOT NULL DEFAULT '';
      CREATE TABLE slot_reports (
        name            TEXT PRIMARY KEY REFERENCES slots(name) ON DELETE CASCADE,
        reported_at     TEXT NOT NULL
      ) STRICT, WITHOUT ROWID;
      DROP INDEX slots_by_machine;
      CREATE INDEX slots_by_machine ON slots(machine, name);
      CREATE INDEX stores_by_master ON stores(master_slot);
      CREATE INDEX slots_cleanup_running ON slots(name) WHERE cleanup_op <> '';
      CREATE INDEX slots_cleanup_requested ON slots(name) WHERE cleanup_requested <> '';
      CREATE INDEX slots_cleanup_next ON slots(cleanup_next_at) WHERE cleanup_next_at <> '';
    `,
  },
  {
    version: 8,
    description: 'the report digest and the machine move to slot_reports: an unchanged report is one narrow UPDATE, the wide slot row is not even read',
    sql: `
      DROP TABLE slot_reports;
      ALTER TABLE slots DROP COLUMN report_digest;
      CREATE TABLE slot_reports (
        name            TEXT PRIMARY KEY REFERENCES slots(name) ON DELETE CASCADE,
        machine         TEXT NOT NULL,
        reported_at     TEXT NOT NULL,
        digest          TEXT NOT NULL
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 9,
    description: 'why a running operation waits at its step, in one sentence (written when it changes, cleared when a row fires)',
    sql: `
      ALTER TABLE operations ADD COLUMN waiting TEXT NOT NULL DEFAULT '';
    `,
  },
  {
    version: 10,
    description: 'slot requests and their results leave the columns of slots for a table of their own: one row per slot and kind',
    // no CHECK on kind: a new kind of request must not need a table rebuild (the code knows its kinds: SLOT_REQUEST_KINDS)
    sql: `
      CREATE TABLE slot_requests (
        slot            TEXT NOT NULL REFERENCES slots(name) ON DELETE CASCADE,
        kind            TEXT NOT NULL,
        id              TEXT NOT NULL DEFAULT '',
        params          TEXT NOT NULL DEFAULT '{}',
        result          TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (slot, kind)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX slot_requests_open ON slot_requests(kind, slot) WHERE id <> '';
      INSERT INTO slot_requests (slot, kind, id, params, result)
        SELECT name, 'replay', replay_op, '{}', replay_result FROM slots WHERE replay_op <> '' OR replay_result <> '{}';
      INSERT INTO slot_requests (slot, kind, id, params, result)
        SELECT name, 'check', check_op, CASE WHEN check_op <> '' THEN json_object('mailboxes', json(check_mailboxes)) ELSE '{}' END, check_result
        FROM slots WHERE check_op <> '' OR check_result <> '{}';
      INSERT INTO slot_requests (slot, kind, id) SELECT name, 'recover-listen', recover_listen FROM slots WHERE recover_listen <> '';
      INSERT INTO slot_requests (slot, kind, id, params, result)
        SELECT name, 'recover-push', recover_op,
          CASE WHEN recover_op <> '' THEN json_object('targetSlot', recover_target_slot, 'mailboxes', json(recover_mailboxes)) ELSE '{}' END, recover_result
        FROM slots WHERE recover_op <> '' OR recover_result <> '{}';
      INSERT INTO slot_requests (slot, kind, id, params, result)
        SELECT name, 'seed', seed_op, '{}', seed_result FROM slots WHERE seed_op <> '' OR seed_result <> '{}';
      INSERT INTO slot_requests (slot, kind, id, params, result)
        SELECT name, 'cleanup', cleanup_op, '{}', cleanup_result FROM slots WHERE cleanup_op <> '' OR cleanup_result <> '{}';
      DROP INDEX slots_cleanup_running;
      ALTER TABLE slots DROP COLUMN replay_op;
      ALTER TABLE slots DROP COLUMN replay_result;
      ALTER TABLE slots DROP COLUMN check_op;
      ALTER TABLE slots DROP COLUMN check_mailboxes;
      ALTER TABLE slots DROP COLUMN check_result;
      ALTER TABLE slots DROP COLUMN recover_listen;
      ALTER TABLE slots DROP COLUMN recover_op;
      ALTER TABLE slots DROP COLUMN recover_target_slot;
      ALTER TABLE slots DROP COLUMN recover_mailboxes;
      ALTER TABLE slots DROP COLUMN recover_result;
      ALTER TABLE slots DROP COLUMN seed_op;
      ALTER TABLE slots DROP COLUMN seed_result;
      ALTER TABLE slots DROP COLUMN cleanup_op;
      ALTER TABLE slots DROP COLUMN cleanup_result;
    `,
  },
  {
    version: 11,
    description: 'events name who caused them (the caller certificate of the Admin call; NULL for what the cluster did itself)',
    sql: `
      ALTER TABLE events ADD COLUMN actor TEXT;
      CREATE INDEX events_by_actor ON events(actor, id) WHERE actor IS NOT NULL;
    `,
  },
  {
    version: 12,
    description: 'an index on the replica slot of stores: each slot inserted while a store waits for it (the deferred foreign key) was a scan of every store — applying 1,000 machines took 3.6 s of one synchronous transaction, longer than an etcd leader lease',
    sql: `
      CREATE INDEX stores_by_replica ON stores(replica_slot);
    `,
  },
  {
    version: 13,
    description: "a machine's pool of addresses for new slots (the cluster file's slot_ips): a replica moved to it takes the first free one",
    sql: `
      ALTER TABLE machines ADD COLUMN slot_ips TEXT NOT NULL DEFAULT '[]';
    `,
  },
  {
    version: 14,
    description: "a store's expected growth (the cluster file's expected_growth): a replica move reserves it on the target's disks beside what the store measures",
    sql: `
      ALTER TABLE stores ADD COLUMN growth_bytes INTEGER NOT NULL DEFAULT 0;
    `,
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
