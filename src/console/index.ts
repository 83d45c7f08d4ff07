/** What other parts may use of the console and VNC streaming code. */
export { bridge, closeSocket, normalClosure, streamFailure, toBuffer } from './bridge.js';
export type { BridgeEnd, BridgeEnds, BridgeOptions } from './bridge.js';
export { dialStream, plainStreamProtocol } from './dial.js';
export type { DialOptions } from './dial.js';
export { EscapeFilter, escapeByte, runConsoleSession } from './session.js';
export type { ConsoleSessionEnd, ConsoleSessionOptions } from './session.js';
export { startStreamProxy } from './tcp-proxy.js';
export type { StreamProxy, StreamProxyOptions } from './tcp-proxy.js';
export { StreamServer, rejectUpgrade } from './stream-server.js';
export type { OpenedStream, StreamTarget } from './stream-server.js';
