/**
 * Workflow ids are business ids: one sweep, one workflow. Pure, so the API, the CLI and the
 * workflow bundle all import them from here.
 */
export const sweepWorkflowId = (sweepId: string) => `sweep/${sweepId}`;
/** A lone trial run outside its sweep (a retry of a failed or cancelled trial starts one). */
export const trialWorkflowId = (trialId: string) => `trial/${trialId}`;
