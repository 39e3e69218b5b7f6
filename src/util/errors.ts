/**
 * An error caused by the user's input (a missing file, a malformed line, a bad option).
 * The CLI prints its message as one line, without a stack trace, and exits with `exitCode`.
 */
export class UserError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'UserError';
  }
}
