/**
 * The child process of the SQLite crash test: opens the store at argv[2]
 * and creates argv[3] keys from 16 concurrent callers, printing each key on
 * stdout the moment its create resolves (stdout on a pipe is synchronous on
 * Linux, so a printed key was acknowledged before anything after it ran).
 * It then prints `done` and stays alive until killed or its stdin closes,
 * so the parent decides when it dies.
 */
import { SqliteStore } from './sqlite.js';

const [path, total = '1000'] = process.argv.slice(2);
if (path === undefined) {
  process.stderr.write('usage: crash-writer <db-path> [count]\n');
  process.exit(2);
}
const count = Number(total);
const store = new SqliteStore({ path });
let next = 0;

async function worker(): Promise<void> {
  while (next < count) {
    const key = `/crash/${String(next++).padStart(5, '0')}`;
    await store.create(key, JSON.stringify({ key, padding: 'x'.repeat(512) }));
    process.stdout.write(`${key}\n`);
  }
}

await Promise.all(Array.from({ length: 16 }, worker));
process.stdout.write('done\n');
process.stdin.resume();
process.stdin.on('end', () => {
  void store.close().then(() => process.exit(0));
});
