/** Errors of a training run, each with the fix in its message. */

import { FlexiError } from "../errors.ts";

export class TrainError extends FlexiError {}
