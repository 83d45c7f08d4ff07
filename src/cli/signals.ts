/** Waiting for the signal that stops a long-running command. */
import type { Logger } from '../log/logger.js';

/** Resolves at the first SIGTERM or SIGINT, logging which. */
export function untilStopSignal(logger: Logger): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info('stopping', { signal });
      resolve();
    };
    process.once('SIGTERM', () => { stop('SIGTERM'); });
    process.once('SIGINT', () => { stop('SIGINT'); });
  });
}
