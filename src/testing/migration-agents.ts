/**
 * Node agents for tests of the migration controller: each node answers the
 * migration steps with what its test says (a function of the command), and
 * records what it was asked. Everything else an agent does is refused: the
 * controller under test only calls `migration`.
 */
import type { Duplex, Readable } from 'node:stream';
import { ApiError } from '../api/errors.js';
import type { AgentDirectory, AgentHandle, UploadResult } from '../agent/handle.js';
import type { MigrationAnswer, MigrationCommand } from '../agent/migration/index.js';

/** How a node answers one migration step: an answer, or a throw (an agent error or an unreachable agent). */
export type MigrationScript = (command: MigrationCommand) => MigrationAnswer | Promise<MigrationAnswer>;

/** The scripted agents, by node name. */
export class ScriptedMigrationAgents implements AgentDirectory {
  private readonly scripts = new Map<string, MigrationScript>();
  /** Every step asked, in order, with the node it was asked of. */
  readonly asked: { node: string; command: MigrationCommand }[] = [];

  /** Sets (or replaces) how `node` answers. */
  script(node: string, script: MigrationScript): void {
    this.scripts.set(node, script);
  }

  /** The steps `node` was asked, by name. */
  stepsOf(node: string, migrationUid?: string): string[] {
    return this.asked.filter((a) => a.node === node && (migrationUid === undefined || a.command.migrationUid === migrationUid)).map((a) => a.command.step);
  }

  forNode(nodeName: string): AgentHandle | undefined {
    const script = this.scripts.get(nodeName);
    if (script === undefined) return undefined;
    const refuse = (): Promise<never> => Promise.reject(new ApiError('Conflict', 'the scripted agent only answers migration steps'));
    return {
      nodeName,
      guestAction: refuse,
      openStream: (): Promise<Duplex> => refuse(),
      openPortForward: (): Promise<Duplex> => refuse(),
      serialLog: (): Promise<string> => refuse(),
      upload: (_namespace: string, _pvc: string, _body: Readable): Promise<UploadResult> => refuse(),
      migration: async (_namespace: string, _name: string, command: MigrationCommand): Promise<MigrationAnswer> => {
        this.asked.push({ node: nodeName, command });
        return script(command);
      },
    };
  }
}
