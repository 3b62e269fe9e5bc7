import { PromisedError } from '../errors.js';

/** A workflow call that cannot be done: unknown name, steps that do not match the machine, a finished workflow. */
export class WorkflowError extends PromisedError {
  constructor(
    code: 'UNKNOWN_WORKFLOW' | 'DUPLICATE_WORKFLOW' | 'WORKFLOW_STEP_MISMATCH' | 'WORKFLOW_FINISHED' | 'WORKFLOW_VERSION_MISMATCH',
    message: string,
  ) {
    super(code, message);
  }
}
