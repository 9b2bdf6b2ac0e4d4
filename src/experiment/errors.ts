/** Errors of the experiment command; each message carries the fix. */

import { FlexiError } from "../errors.ts";

/** A paragraphs file, an output folder or a resumed run that cannot be used as given. */
export class ExperimentError extends FlexiError {}
