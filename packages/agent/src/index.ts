export { CoordinatorLink, type LinkState } from './coordinator/link.js';
export { AppliedStore } from './state/applied-store.js';
export { planApply, validateDesiredSlot, type AppliedSlot } from './state/apply-plan.js';
