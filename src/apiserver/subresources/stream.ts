/**
 * `console`, `vnc` and `portforward/PORT`: a WebSocket upgrade with
 * KubeVirt's `plain.kubevirt.io` subprotocol, then the bytes of the
 * guest's serial console, VNC server or TCP port, raw, in binary frames (`StreamServer` in
 * `src/console`). Every refusal happens before the upgrade, as a plain HTTP
 * `Status` (404 no such VMI, 400 not running, 503 no agent). Each session
 * gets its own agent stream, so several users can share a console (KubeVirt
 * allows one).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { badRequest } from '../../api/errors.js';
import { StreamServer } from '../../console/index.js';
import type { SubresourceContext } from './context.js';
import { agentOn, kubevirtDefs, notRunningMessage } from './context.js';
import { nodeNameOf, vmiPhase } from '../../api/kinds/vm-state.js';

export class StreamSessions {
  private readonly server: StreamServer;

  constructor(private readonly context: SubresourceContext) {
    this.server = new StreamServer(context.logger);
  }

  /** Number of open sessions (console and VNC). */
  get size(): number {
    return this.server.size;
  }

  /**
   * Checks the request, opens the agent's stream, then completes the
   * upgrade. Throws (an ApiError) before anything is written, so the caller
   * answers with `rejectUpgrade`.
   */
  async upgrade(
    target: { namespace: string; name: string; kind: 'console' | 'vnc'; path: string } | { namespace: string; name: string; kind: 'portforward'; port: number; path: string },
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ): Promise<void> {
    await this.server.upgrade(req, socket, head, {
      path: target.path,
      open: async () => {
        const vmi = await this.context.objects.get(kubevirtDefs(this.context.registry).vmi, target.namespace, target.name);
        const node = nodeNameOf(vmi);
        if (vmiPhase(vmi) !== 'Running' || node === undefined) throw badRequest(notRunningMessage(vmi));
        const agent = agentOn(this.context, node);
        const stream = target.kind === 'portforward' ? await agent.openPortForward(target.namespace, target.name, target.port) : await agent.openStream(target.namespace, target.name, target.kind);
        return { stream, log: { ...target, uid: vmi.metadata.uid, node } };
      },
    });
  }

  /** Ends every open session (server shutdown). */
  close(): void {
    this.server.close();
  }
}
