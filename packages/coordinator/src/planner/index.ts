export * from './model.js';
export * from './layout.js';
export * from './whatif.js';
export * from './rebalance.js';
export * from './grow.js';
export * from './from-rows.js';
export * from './input.js';
