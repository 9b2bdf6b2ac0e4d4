/** Errors of `flexidepth eval`; each message carries the fix. */

import { FlexiError } from "../errors.ts";

/** A task, data file, task file, output folder or resumed run that cannot be used as given. */
export class EvalError extends FlexiError {}
