export const SLOTCTL_VERSION = '0.1.0';
