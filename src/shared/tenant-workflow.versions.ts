import { defineSignal } from '@temporalio/workflow';

/**
 * The versions of the tenant workflow's code and carried state, and the one message that moves a run
 * to the current code (docs/upgrades.md). Pure: read by the workflow and by the upgrade command.
 */

/** Runs whose history lacks this patch marker replay on the frozen version-1 code (workflows/legacy). */
export const TENANT_STATE_V2_PATCH = 'tenant-state-v2';
/** Runs whose history lacks this patch marker replay on the frozen version-2 code (workflows/legacy). */
export const ADMISSION_V3_PATCH = 'admission-v3';
/** The patch marker every run of the current code records first: without it, a run is on frozen code. */
export const CURRENT_CODE_PATCH = ADMISSION_V3_PATCH;
/** The state_version the current code carries across continue-as-new (older ones are converted by frozen code). */
export const CURRENT_STATE_VERSION = 3;

/**
 * Asks a run to continue as new at its next safe point (once no update is being handled), so that
 * the next run starts on the current code with the current carried state. Every version of the
 * workflow handles it, the frozen ones included; a run that never receives it replays unchanged.
 */
export const continueAsNewSignal = defineSignal('continueAsNew');
