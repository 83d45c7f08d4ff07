/**
 * Reading and decoding request bodies: a size limit, then JSON or YAML by
 * content type, always ending in a typed value or a 4xx ApiError.
 */
import type { IncomingMessage } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { ApiError, badRequest } from '../api/errors.js';
import { decodeProtobufObject, protobufMediaType } from './protobuf/kube.js';

/** kube-apiserver's limit on request bodies. */
export const maxBodyBytes = 3 * 1024 * 1024;

export async function readBody(req: IncomingMessage, limit = maxBodyBytes): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) {
      // Stop reading but keep the connection usable: drain the rest without buffering it.
      req.resume();
      throw tooLarge(limit);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

function tooLarge(limit: number): ApiError {
  return new ApiError(
    'RequestEntityTooLarge',
    `the request body is larger than the server accepts (${limit} bytes): split the object or store large data elsewhere`,
  );
}

/** The media type without parameters, lowercased. */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/**
 * Binary encodings kube-apiserver also accepts. Refusing them with 415 (not
 * a 400 about invalid JSON) says what is wrong, and lets client-go fall back
 * to JSON where it can (it does for CBOR).
 */
const binaryMediaTypes = new Set(['application/cbor', 'application/apply-patch+cbor']);

/** Decodes a body as JSON, or YAML when the media type says so. */
export function decodeBody(body: Buffer, contentType: string | undefined): unknown {
  const type = mediaType(contentType);
  // Protobuf hook: kubectl's `create <generator>` commands send their objects as protobuf (src/apiserver/protobuf).
  if (type === protobufMediaType) return decodeProtobufObject(body);
  if (binaryMediaTypes.has(type)) {
    throw new ApiError(
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (this server does not decode ${type})`,
    );
  }
  const text = body.toString('utf8');
  if (text.trim() === '') throw badRequest('the request body is empty: send the object as JSON or YAML');
  if (type === 'application/yaml' || type === 'application/apply-patch+yaml' || type === 'text/yaml') {
    try {
      return parseYaml(text, { maxAliasCount: 100 }) as unknown;
    } catch (err) {
      throw badRequest(`the request body is not valid YAML: ${(err as Error).message}`, err);
    }
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw badRequest(`the request body is not valid JSON: ${(err as Error).message}`, err);
  }
}
