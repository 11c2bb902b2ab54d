export { Coordinator, type CoordinatorConfig } from './coordinator.js';
export { openDatabase } from './db/open.js';
export { Repository } from './db/repository.js';
