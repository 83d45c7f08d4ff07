/**
 * What the API server asks of a node's agent directly, for the KubeVirt
 * subresources that act on a running guest rather than on stored objects
 * (virt-api → virt-handler in KubeVirt): pause, unpause, soft reboot,
 * reset, the serial console and VNC streams, port forwarding; and CDI uploads, whose
 * bytes go to the node holding the volume (cdi-uploadproxy → the upload
 * server pod in CDI).
 *
 * The agent embedded in `vireo server` registers an in-process handle;
 * agents on other hosts (`vireo agent`) are reached over HTTPS with the same
 * interface (`src/agent/endpoint.ts` serves it, `src/server/remote-agents.ts`
 * calls it).
 */
import type { Duplex, Readable } from 'node:stream';
import type { UploadOptions, UploadResult } from '../storage/import/index.js';
import type { MigrationAnswer, MigrationCommand } from './migration/index.js';

export type { UploadOptions, UploadResult };

export type GuestAction = 'pause' | 'unpause' | 'softreboot' | 'reset' | 'freeze' | 'unfreeze';

/** What some guest actions take besides their name. */
export interface GuestActionParameters {
  /** `freeze`: thaw by itself after this many seconds unless unfrozen first; 0 never (KubeVirt's `unfreezeTimeout`). */
  unfreezeTimeoutSeconds?: number;
}

export interface AgentHandle {
  /** The Node name this agent runs as. */
  readonly nodeName: string;
  /**
   * Acts on the running guest of VMI `namespace/name`. Rejects with an
   * ApiError (`NotFound`/`Conflict` with KubeVirt's messages, e.g.
   * "VMI is not running", "VMI is already paused") when it cannot.
   */
  guestAction(namespace: string, name: string, action: GuestAction, parameters?: GuestActionParameters): Promise<void>;
  /**
   * A byte stream to the guest's serial console (`console`) or VNC server
   * (`vnc`). Several console streams may be open at once; each sees all
   * output from when it opened. Ending the stream detaches, it never stops
   * the guest.
   */
  openStream(namespace: string, name: string, kind: 'console' | 'vnc'): Promise<Duplex>;
  /**
   * A TCP connection to `port` of the guest, through its pod network
   * address (KubeVirt's `portforward` subresource). Rejects with an ApiError
   * when the guest is not running here, has no pod network address, or
   * refuses the connection.
   */
  openPortForward(namespace: string, name: string, port: number): Promise<Duplex>;
  /** The serial console output kept for the VMI (KubeVirt's `logSerialConsole`), oldest first. */
  serialLog(namespace: string, name: string): Promise<string>;
  /**
   * Streams an image from `body` into the volume of PVC `namespace/pvc`
   * (an upload target bound on this node) through the importer. Resolves
   * once processed, or with `async` once received; rejects with an
   * ApiError (CDI's messages: "… that already finished uploading", 400 for
   * a bad image, 503 while the PVC is not bound here).
   */
  upload(namespace: string, pvc: string, body: Readable, options: UploadOptions): Promise<UploadResult>;
  /**
   * One step of a live migration of VMI `namespace/name` on this node, as
   * its source or its target (`src/agent/migration`); rejects with an
   * ApiError saying why a step cannot be done.
   */
  migration(namespace: string, name: string, command: MigrationCommand): Promise<MigrationAnswer>;
  /** KubeVirt's per-VMI families of the node's running guests, in Prometheus' text format (`GET /metrics` on the agent's endpoint). */
  metrics(): Promise<string>;
}

/** Where the API server finds the agent of a node. */
export interface AgentDirectory {
  forNode(nodeName: string): AgentHandle | undefined;
}

/** The directory of agents living in this process. */
export class LocalAgentDirectory implements AgentDirectory {
  private readonly agents = new Map<string, AgentHandle>();

  register(handle: AgentHandle): void {
    this.agents.set(handle.nodeName, handle);
  }

  unregister(nodeName: string): void {
    this.agents.delete(nodeName);
  }

  forNode(nodeName: string): AgentHandle | undefined {
    return this.agents.get(nodeName);
  }
}
