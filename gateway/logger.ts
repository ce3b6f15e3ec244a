/**
 * pino, with secrets redacted wherever they might ride along in a log object. Tokens and
 * passwords are never logged on purpose; redaction is the belt to that brace.
 */
import { pino, type DestinationStream, type Logger } from 'pino'

export function createLogger (level: string, destination?: NodeJS.WritableStream): Logger {
  return pino({
    level,
    base: { service: 'ambulink' },
    redact: {
      paths: ['password', 'token', 'authorization', '*.password', '*.token', '*.authorization', 'req.headers.authorization', 'headers.authorization'],
      censor: '[redacted]'
    }
  }, destination as DestinationStream | undefined)
}
