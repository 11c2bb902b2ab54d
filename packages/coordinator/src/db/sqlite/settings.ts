// Settings in SQLite: what the cluster file says beyond machines and stores (the cleanup policy), by key.
import type Database from 'better-sqlite3';
import type { SettingStorage } from '../storage.js';

export class SqliteSettings implements SettingStorage {
  private readonly stmt;

  constructor(db: Database.Database) {
    this.stmt = {
      get: db.prepare('SELECT value FROM settings WHERE key = ?'),
      delete: db.prepare('DELETE FROM settings WHERE key = ?'),
      set: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    };
  }

  get(key: string): string | undefined {
    return (this.stmt.get.get(key) as { value: string } | undefined)?.value;
  }

  set(key: string, value: string | undefined): void {
    if (value === undefined) this.stmt.delete.run(key);
    else this.stmt.set.run(key, value);
  }
}
