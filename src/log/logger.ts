/**
 * Structured JSON logs: one line per record, with the component and, where
 * there is one, the object (namespace, name, uid). Components get a logger
 * injected; nothing logs through globals.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose records all carry `fields` (e.g. the component, or an object). */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; stderr by default so stdout stays for command output. */
  write?: (line: string) => void;
}

/** What {@link objectFields} reads of an object: any Kubernetes object fits. */
export interface LoggedObject {
  kind?: string;
  metadata: { namespace?: string | undefined; name?: string | undefined; uid?: string | undefined };
}

/** The fields every record about `obj` carries: its kind, namespace, name and uid. */
export function objectFields(obj: LoggedObject): { kind: string | undefined; namespace: string | undefined; name: string | undefined; uid: string | undefined } {
  return { kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name, uid: obj.metadata.uid };
}

export function isLogLevel(value: string): value is LogLevel {
  return value in levelRank;
}

export function createLogger(options: LoggerOptions = {}, base: LogFields = {}): Logger {
  const min = levelRank[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const log = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (levelRank[level] < min) return;
    const record: LogFields = { time: new Date().toISOString(), level, ...base, msg, ...fields };
    const err = record.err;
    if (err instanceof Error) record.err = { message: err.message, stack: err.stack };
    write(`${JSON.stringify(record)}\n`);
  };
  return {
    debug: (m, f) => { log('debug', m, f); },
    info: (m, f) => { log('info', m, f); },
    warn: (m, f) => { log('warn', m, f); },
    error: (m, f) => { log('error', m, f); },
    child: (fields) => createLogger(options, { ...base, ...fields }),
  };
}

/** A logger that drops everything (tests that don't look at logs). */
export const silentLogger: Logger = createLogger({ level: 'error', write: () => undefined });
