import { PromisedError } from '../errors.js';

/** A workflow call that cannot be done: unknown name, steps that do not match the machine, a finished workflow, a key taken by a workflow of another name. */
export class WorkflowError extends PromisedError {
  constructor(
    code: 'UNKNOWN_WORKFLOW' | 'DUPLICATE_WORKFLOW' | 'WORKFLOW_STEP_MISMATCH' | 'WORKFLOW_FINISHED' | 'WORKFLOW_VERSION_MISMATCH' | 'WORKFLOW_KEY_CONFLICT',
    message: string,
  ) {
    super(code, message);
  }
}
