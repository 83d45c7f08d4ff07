/**
 * The agents' side of live migrations for tests of the migration
 * controller that run no guests: every node's handle answers the
 * controller's migration steps from a script the test sets (where each
 * source is: migrating, in post-copy, completed, aborted), records each
 * step it was asked for, and refuses to cancel a post-copy migration as
 * the real source does. What is under test is the controller (phases,
 * settings, limits), not this directory; the real steps are tested on lab
 * hosts with QEMU.
 */
import { ApiError } from '../api/errors.js';
import type { AgentDirectory, AgentHandle } from '../agent/handle.js';
import type { MigrationAnswer, MigrationCommand, SourceProgress } from '../agent/migration/index.js';

/** One step the controller asked of `node`. */
export interface RecordedStep {
  node: string;
  namespace: string;
  name: string;
  command: MigrationCommand;
}

/** Every node's migration steps, scripted. */
export class ScriptedMigrationAgents implements AgentDirectory {
  readonly steps: RecordedStep[] = [];
  private readonly sources = new Map<string, SourceProgress>();
  private nextPort = 40000;
  private readonly interceptors = new Map<string, (command: MigrationCommand) => MigrationAnswer | undefined>();

  /**
   * Makes `node` answer through `interceptor` first (undefined: no longer):
   * an answer, a throw (an agent's error, or one out of reach), or
   * undefined for the scripted answer. The fault tests' way to break a node.
   */
  intercept(node: string, interceptor: ((command: MigrationCommand) => MigrationAnswer | undefined) | undefined): void {
    if (interceptor === undefined) this.interceptors.delete(node);
    else this.interceptors.set(node, interceptor);
  }

  /** What the source of migration `migrationUid` reports from now on. */
  setSource(migrationUid: string, progress: SourceProgress): void {
    this.sources.set(migrationUid, progress);
  }

  /** The steps asked for migration `migrationUid`, in order. */
  stepsOf(migrationUid: string): RecordedStep[] {
    return this.steps.filter((s) => s.command.migrationUid === migrationUid);
  }

  forNode(nodeName: string): AgentHandle {
    const refuse = (what: string): Promise<never> => Promise.reject(new ApiError('Conflict', `the scripted migration agent of ${nodeName} runs no guests: it cannot ${what}`));
    return {
      nodeName,
      guestAction: () => refuse('act on a guest'),
      openStream: () => refuse('open a stream'),
      openPortForward: () => refuse('forward a port'),
      serialLog: () => refuse('keep a serial log'),
      metrics: () => refuse('serve metrics'),
      upload: () => refuse('take an upload'),
      migration: (namespace, name, command) => Promise.resolve().then(() => this.answer(nodeName, namespace, name, command)),
    };
  }

  private answer(node: string, namespace: string, name: string, command: MigrationCommand): MigrationAnswer {
    this.steps.push({ node, namespace, name, command });
    const intercepted = this.interceptors.get(node)?.(command);
    if (intercepted !== undefined) return intercepted;
    switch (command.step) {
      case 'prepare-target':
        this.nextPort += 2;
        return { target: { address: command.address, migrationPort: this.nextPort, nbdPort: this.nextPort + 1, exports: [] } };
      case 'start-source':
        if (!this.sources.has(command.migrationUid)) this.sources.set(command.migrationUid, { state: 'migrating', mode: 'PreCopy' });
        return { source: this.status(command.migrationUid) };
      case 'source-status':
        return { source: this.status(command.migrationUid) };
      case 'cancel-source': {
        const progress = this.status(command.migrationUid);
        if (progress.mode === 'PostCopy') throw new ApiError('Conflict', 'the migration is in post-copy mode: it cannot be cancelled');
        this.sources.set(command.migrationUid, { state: 'cancelled', message: 'the migration was cancelled' });
        return { source: this.status(command.migrationUid) };
      }
      case 'resume-target':
      case 'finish-target':
      case 'finish-source':
      case 'abort-target':
        return {};
      default:
        return assertNever(command);
    }
  }

  private status(migrationUid: string): SourceProgress {
    return this.sources.get(migrationUid) ?? { state: 'unknown', message: 'no such migration' };
  }
}

function assertNever(value: never): never {
  throw new Error(`unhandled migration step ${JSON.stringify(value)}`);
}
