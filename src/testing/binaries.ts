/** Whether a program is on the PATH, for tests that skip (saying why) where it is not installed. */
import { execFileSync } from 'node:child_process';

export function hasBinary(name: string): boolean {
  try {
    execFileSync('which', [name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
