/**
 * Kubernetes' protobuf request bodies (`application/vnd.kubernetes.protobuf`):
 * the `k8s\0` magic, then a `runtime.Unknown` envelope naming the kind and
 * carrying the object's own message in `raw`. kubectl's `create <generator>`
 * commands (configmap, secret, service, …) send this since 1.32, and
 * client-go does not fall back to JSON when it is refused, so the kinds they
 * create are decoded here into the object their JSON encoding gives.
 */
import { ApiError } from '../../api/errors.js';
import { decodeMessage } from './decode.js';
import type { MessageSpec } from './decode.js';
import { protobufKinds } from './messages.js';
import { WireReader, WireType, fieldOf, malformed, wireTypeOf } from './wire.js';

/** The media type of Kubernetes' protobuf encoding. */
export const protobufMediaType = 'application/vnd.kubernetes.protobuf';

const magic = Buffer.from('k8s\x00', 'latin1');

/** The decoded `runtime.Unknown` envelope. */
export interface ProtobufEnvelope {
  apiVersion: string;
  kind: string;
  /** Where the object's message lies in the body; empty when `raw` was absent. */
  raw: { start: number; end: number };
  contentEncoding: string;
  contentType: string;
}

/** Reads the magic and the `runtime.Unknown` envelope {typeMeta = 1, raw = 2, contentEncoding = 3, contentType = 4}. */
export function readEnvelope(body: Buffer): ProtobufEnvelope {
  if (body.length < magic.length || !body.subarray(0, magic.length).equals(magic)) {
    throw malformed('it does not start with the Kubernetes protobuf prefix "k8s\\x00"', 0);
  }
  const envelope: ProtobufEnvelope = { apiVersion: '', kind: '', raw: { start: body.length, end: body.length }, contentEncoding: '', contentType: '' };
  const reader = new WireReader(body, magic.length);
  while (!reader.done) {
    const at = reader.offset;
    const tag = reader.tag();
    const number = fieldOf(tag);
    if (number < 1 || number > 4) {
      reader.skip(wireTypeOf(tag));
      continue;
    }
    if (wireTypeOf(tag) !== WireType.lengthDelimited) throw malformed(`runtime.Unknown field ${number} has wire type ${wireTypeOf(tag)}`, at);
    if (number === 1) readTypeMeta(reader.message(), envelope);
    else if (number === 2) {
      const [start, end] = reader.span();
      envelope.raw = { start, end };
    } else if (number === 3) envelope.contentEncoding = reader.string();
    else envelope.contentType = reader.string();
  }
  return envelope;
}

/** runtime.TypeMeta {apiVersion = 1, kind = 2} (the reverse of meta/v1 TypeMeta's numbering). */
function readTypeMeta(reader: WireReader, envelope: ProtobufEnvelope): void {
  while (!reader.done) {
    const at = reader.offset;
    const tag = reader.tag();
    const number = fieldOf(tag);
    if (number !== 1 && number !== 2) {
      reader.skip(wireTypeOf(tag));
      continue;
    }
    if (wireTypeOf(tag) !== WireType.lengthDelimited) throw malformed(`runtime.TypeMeta field ${number} has wire type ${wireTypeOf(tag)}`, at);
    if (number === 1) envelope.apiVersion = reader.string();
    else envelope.kind = reader.string();
  }
}

/** The accepted kinds as `Kind (apiVersion)`, for messages. */
function acceptedKinds(): string {
  const names: string[] = [];
  for (const [apiVersion, kinds] of protobufKinds) for (const kind of kinds.keys()) names.push(`${kind} (${apiVersion})`);
  return names.join(', ');
}

/**
 * Decodes a protobuf request body into the plain object Kubernetes' JSON
 * encoding gives for it. Malformed bytes are a 400; a kind (or an inner
 * encoding) not decoded here is a 415 that says to send JSON.
 */
export function decodeProtobufObject(body: Buffer): Record<string, unknown> {
  const envelope = readEnvelope(body);
  const what = envelope.kind === '' ? 'an object without a kind' : `${envelope.kind} (${envelope.apiVersion === '' ? 'no apiVersion' : envelope.apiVersion})`;
  if (envelope.contentEncoding !== '') {
    throw new ApiError('UnsupportedMediaType', `the protobuf body of ${what} has content encoding "${envelope.contentEncoding}", which this server does not decode: send the object as JSON (Content-Type: application/json)`);
  }
  if (envelope.contentType !== '' && envelope.contentType !== protobufMediaType) {
    throw new ApiError('UnsupportedMediaType', `the protobuf envelope of ${what} wraps "${envelope.contentType}", which this server does not decode: send the object as JSON (Content-Type: application/json)`);
  }
  const spec: MessageSpec | undefined = protobufKinds.get(envelope.apiVersion)?.get(envelope.kind);
  if (spec === undefined) {
    throw new ApiError(
      'UnsupportedMediaType',
      `this server accepts protobuf (${protobufMediaType}) only for the kinds kubectl's create generators send: ${acceptedKinds()}; send ${what} as JSON (Content-Type: application/json), as kubectl create -f and apply do`,
    );
  }
  const object = decodeMessage(new WireReader(body, envelope.raw.start, envelope.raw.end), spec);
  return { kind: envelope.kind, apiVersion: envelope.apiVersion, ...object };
}
