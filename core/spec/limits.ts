/**
 * Operator limits on "bring your own job" sweeps (a spec's `command`, `env` and `workdir`). They
 * are declared with every other variable in core/settings.ts; re-exported here for the spec code.
 */
export { readCommandLimits, type CommandLimits } from '../settings';
