// @slotctl/planner: placement as pure functions (machines and stores in, a plan with a sentence per decision out).
// No database, no gRPC: the coordinator turns its rows into a PlanCluster (its placement/from-rows.ts), slotctl a
// cluster file (clusterFromSpec).
export * from './model.js';
export * from './layout.js';
export * from './whatif.js';
export * from './rebalance.js';
export * from './grow.js';
export * from './input.js';
export * from './fanout.js';
export * from './evacuate.js';
