export { Coordinator, type CoordinatorConfig } from './coordinator.js';
export { openDatabase } from './db/open.js';
export { sqliteStorage } from './db/sqlite/index.js';
export type { Storage } from './db/storage.js';
