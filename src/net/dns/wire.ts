/**
 * The DNS wire format (RFC 1035) as far as the cluster DNS needs it: a
 * query's header, its one question and its EDNS buffer size in; a response
 * with A, AAAA, CNAME, SRV, PTR and SOA records out, names compressed
 * against the question. Malformed queries parse to an error, never a throw
 * past this module.
 */

export const recordTypes = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const rcodes = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export interface Question {
  /** Lower-case, without the trailing dot. */
  name: string;
  type: number;
  class: number;
}

export interface Query {
  id: number;
  opcode: number;
  recursionDesired: boolean;
  question: Question;
  /** The requester's EDNS UDP payload size, when it sent an OPT record. */
  ednsSize: number | undefined;
}

export type ResourceData =
  | { type: 'A' | 'AAAA'; address: string }
  | { type: 'CNAME' | 'PTR'; target: string }
  | { type: 'SRV'; priority: number; weight: number; port: number; target: string }
  | { type: 'SOA'; primary: string; mailbox: string; serial: number; refresh: number; retry: number; expire: number; minimum: number };

export interface ResourceRecord {
  name: string;
  ttl: number;
  data: ResourceData;
}

export interface Response {
  rcode: number;
  authoritative: boolean;
  answers: ResourceRecord[];
  authority: ResourceRecord[];
  additional: ResourceRecord[];
}

export class DnsFormatError extends Error {
  constructor(
    message: string,
    /** The query id, when the header could be read (a FORMERR reply can then be sent). */
    readonly id: number | undefined,
  ) {
    super(message);
    this.name = 'DnsFormatError';
  }
}

function readName(buf: Buffer, start: number, id: number): { name: string; next: number } {
  const labels: string[] = [];
  let offset = start;
  let next = -1;
  for (let jumps = 0; ; ) {
    const length = buf[offset];
    if (length === undefined) throw new DnsFormatError('name runs past the end of the message', id);
    if (length === 0) {
      offset += 1;
      break;
    }
    if ((length & 0xc0) === 0xc0) {
      const low = buf[offset + 1];
      if (low === undefined || ++jumps > 16) throw new DnsFormatError('bad name compression pointer', id);
      if (next < 0) next = offset + 2;
      offset = ((length & 0x3f) << 8) | low;
      continue;
    }
    if (length > 63 || offset + 1 + length > buf.length) throw new DnsFormatError('bad label length', id);
    labels.push(buf.toString('latin1', offset + 1, offset + 1 + length));
    offset += 1 + length;
  }
  return { name: labels.join('.').toLowerCase(), next: next < 0 ? offset : next };
}

/** Parses a query; throws DnsFormatError for anything that is not one question of a query. */
export function parseQuery(buf: Buffer): Query {
  if (buf.length < 12) throw new DnsFormatError('message shorter than a DNS header', undefined);
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  if ((flags & 0x8000) !== 0) throw new DnsFormatError('message is a response, not a query', id);
  const qdcount = buf.readUInt16BE(4);
  const ancount = buf.readUInt16BE(6);
  const nscount = buf.readUInt16BE(8);
  const arcount = buf.readUInt16BE(10);
  if (qdcount !== 1) throw new DnsFormatError(`query has ${qdcount} questions, not one`, id);
  const { name, next } = readName(buf, 12, id);
  if (next + 4 > buf.length) throw new DnsFormatError('question runs past the end of the message', id);
  const question = { name, type: buf.readUInt16BE(next), class: buf.readUInt16BE(next + 2) };
  let offset = next + 4;
  let ednsSize: number | undefined;
  // Answer and authority sections are skipped; the additional section may hold the EDNS OPT record.
  for (let i = 0; i < ancount + nscount + arcount; i++) {
    const record = readName(buf, offset, id);
    offset = record.next;
    if (offset + 10 > buf.length) throw new DnsFormatError('record runs past the end of the message', id);
    const type = buf.readUInt16BE(offset);
    const rdlength = buf.readUInt16BE(offset + 8);
    if (type === recordTypes.OPT && i >= ancount + nscount) ednsSize = buf.readUInt16BE(offset + 2);
    offset += 10 + rdlength;
    if (offset > buf.length) throw new DnsFormatError('record data runs past the end of the message', id);
  }
  return { id, opcode: (flags >> 11) & 0xf, recursionDesired: (flags & 0x0100) !== 0, question, ednsSize };
}

function encodeName(name: string): Buffer {
  const parts = name === '' ? [] : name.split('.');
  return Buffer.concat([...parts.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'latin1')])), Buffer.from([0])]);
}

function encodeAddress(data: { type: 'A' | 'AAAA'; address: string }): Buffer {
  if (data.type === 'A') return Buffer.from(data.address.split('.').map(Number));
  const [head = '', tail] = data.address.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => { out.writeUInt16BE(parseInt(g, 16), i * 2); });
  return out;
}

function encodeData(data: ResourceData): Buffer {
  switch (data.type) {
    case 'A':
    case 'AAAA':
      return encodeAddress(data);
    case 'CNAME':
    case 'PTR':
      return encodeName(data.target);
    case 'SRV': {
      const head = Buffer.alloc(6);
      head.writeUInt16BE(data.priority, 0);
      head.writeUInt16BE(data.weight, 2);
      head.writeUInt16BE(data.port, 4);
      return Buffer.concat([head, encodeName(data.target)]);
    }
    case 'SOA': {
      const tail = Buffer.alloc(20);
      [data.serial, data.refresh, data.retry, data.expire, data.minimum].forEach((v, i) => { tail.writeUInt32BE(v >>> 0, i * 4); });
      return Buffer.concat([encodeName(data.primary), encodeName(data.mailbox), tail]);
    }
  }
}

function encodeRecord(record: ResourceRecord, questionName: string): Buffer {
  // The question's name sits at offset 12: answers about it point there.
  const name = record.name === questionName ? Buffer.from([0xc0, 0x0c]) : encodeName(record.name);
  const data = encodeData(record.data);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(recordTypes[record.data.type], 0);
  fixed.writeUInt16BE(1, 2);
  fixed.writeUInt32BE(record.ttl, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([name, fixed, data]);
}

/**
 * Encodes the response to `query`. Over UDP (`maxSize`), a response that
 * does not fit is sent without records and with TC set, so the client asks
 * again over TCP.
 */
export function encodeResponse(query: Pick<Query, 'id' | 'opcode' | 'recursionDesired'> & { question: Question | undefined }, response: Response, maxSize = 65535): Buffer {
  const build = (truncated: boolean): Buffer => {
    const header = Buffer.alloc(12);
    header.writeUInt16BE(query.id, 0);
    let flags = 0x8000 | (query.opcode << 11) | response.rcode;
    if (response.authoritative) flags |= 0x0400;
    if (truncated) flags |= 0x0200;
    if (query.recursionDesired) flags |= 0x0100;
    header.writeUInt16BE(flags, 2);
    const question = query.question;
    header.writeUInt16BE(question === undefined ? 0 : 1, 4);
    const sections = truncated ? [[], [], []] : [response.answers, response.authority, response.additional];
    sections.forEach((records, i) => { header.writeUInt16BE(records.length, 6 + i * 2); });
    const parts: Buffer[] = [header];
    if (question !== undefined) {
      const fixed = Buffer.alloc(4);
      fixed.writeUInt16BE(question.type, 0);
      fixed.writeUInt16BE(question.class, 2);
      parts.push(encodeName(question.name), fixed);
    }
    for (const records of sections) for (const record of records) parts.push(encodeRecord(record, question?.name ?? ''));
    return Buffer.concat(parts);
  };
  const full = build(false);
  return full.length <= maxSize ? full : build(true);
}
