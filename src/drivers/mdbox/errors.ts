import { MailstoreError, type ErrorLocation } from "../../shared/errors.js";

/**
 * A copy would raise a map record's refcount past REFCOUNT_MAX (32767), which
 * Dovecot refuses too ("Message has been copied too many times"). The code
 * REFCOUNT_OVERFLOW is in src/shared/errors.ts with the others.
 */
export class RefcountOverflowError extends MailstoreError {
  constructor(
    message: string,
    readonly mapUid: number,
    readonly refcount: number,
    where: ErrorLocation = {},
  ) {
    super("REFCOUNT_OVERFLOW", message, where);
  }
}
