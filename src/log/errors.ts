/**
 * Typed errors of the log. Each has a stable `code` that callers switch on.
 */
export type LogErrorCode =
  | 'ERR_LOG_CORRUPT' // a sealed segment (fully synced when sealed) fails verification: not a torn write
  | 'ERR_LOG_BAD_HEADER' // a segment header has a wrong magic, checksum or base sequence
  | 'ERR_LOG_VERSION' // a segment was written by a format version this code does not read
  | 'ERR_LOG_RECORD_TOO_LARGE' // body above MAX_BODY_SIZE
  | 'ERR_LOG_CLOSED' // append or read after close()
  | 'ERR_LOG_FAILED' // a write or fsync failed; the log refuses further appends until reopened
  | 'ERR_LOG_BAD_RECORD' // a typed decoder was given a record of another type or a short body
  | 'ERR_LOG_OPTIONS'; // invalid options

export class LogError extends Error {
  readonly code: LogErrorCode;
  constructor(code: LogErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LogError';
    this.code = code;
  }
}
