/**
 * Runs the real kubectl against a test server. Versions come from the
 * machine image (`kubectl` 1.32 on the PATH, `kubectl.1.NN` beside it).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

let kubectlDir: string | undefined | null;

/** Path of kubectl 1.`minor`, or undefined when this machine does not have it. */
export function kubectlBinary(minor?: number): string | undefined {
  if (kubectlDir === undefined) {
    try {
      const onPath = execFileSync('which', ['kubectl'], { encoding: 'utf8' }).trim();
      kubectlDir = dirname(realpathSync(onPath));
    } catch {
      kubectlDir = null;
    }
  }
  if (kubectlDir === null) return undefined;
  if (minor === undefined) return join(kubectlDir, 'kubectl');
  const path = join(kubectlDir, `kubectl.1.${minor}`);
  return existsSync(path) ? path : undefined;
}

export interface KubectlOptions {
  kubeconfig: string;
  binary?: string;
  stdin?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

export function kubectl(args: string[], options: KubectlOptions): Promise<KubectlResult> {
  const binary = options.binary ?? kubectlBinary();
  if (binary === undefined) throw new Error('kubectl is not installed: run scripts/setup');
  return new Promise((resolve) => {
    const child = execFile(
      binary,
      args,
      {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dirname(options.kubeconfig), KUBECONFIG: options.kubeconfig, ...options.env },
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.stdin !== undefined) child.stdin?.end(options.stdin);
    else child.stdin?.end();
  });
}
