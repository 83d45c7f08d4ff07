/**
 * Prometheus' text exposition format (0.0.4), written by hand for the
 * per-VMI families: their label sets carry each VMI's own labels
 * (`kubernetes_vmi_label_<key>`), which a client library that wants label
 * names up front cannot hold. One scrape builds one string.
 */

/** The Content-Type of the text format. */
export const textFormat = 'text/plain; version=0.0.4; charset=utf-8';

export type MetricType = 'counter' | 'gauge';

/** A family's name, type and help, as a scrape declares it once. */
export interface FamilySpec {
  name: string;
  type: MetricType;
  help: string;
}

/** A counter family's spec. */
export const counterFamily = (name: string, help: string): FamilySpec => ({ name, type: 'counter', help });
/** A gauge family's spec. */
export const gaugeFamily = (name: string, help: string): FamilySpec => ({ name, type: 'gauge', help });

export type Labels = Record<string, string>;

/** Escapes a label value: backslash, double quote and newline, as the format asks. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Escapes a HELP text: backslash and newline. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/**
 * The label name KubeVirt gives a VMI label: `kubernetes_vmi_label_` and the
 * key with every character a label name cannot hold (`.`, `/`, `-`, …) as `_`.
 */
export function vmiLabelName(key: string): string {
  return `kubernetes_vmi_label_${key.replace(/[^a-zA-Z0-9_]/g, '_')}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** `labels` as the text between a sample's braces (`a="1",b="2"`): made once for labels many samples share. */
export function labelText(labels: Labels): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(labels)) parts.push(`${name}="${escapeLabelValue(value)}"`);
  return parts.join(',');
}

/** The samples of one scrape, grouped by family; families without samples are left out. */
export class Exposition {
  private readonly samples = new Map<FamilySpec, string[]>();

  /** Adds one sample of `family`; a value that is not a finite number (a source that did not say) is skipped. */
  add(family: FamilySpec, labels: Labels, value: number | undefined): void {
    this.addText(family, labelText(labels), value);
  }

  /** {@link add} with the labels already as text ({@link labelText}). */
  addText(family: FamilySpec, labels: string, value: number | undefined): void {
    if (value === undefined || !Number.isFinite(value)) return;
    let lines = this.samples.get(family);
    if (lines === undefined) {
      lines = [];
      this.samples.set(family, lines);
    }
    lines.push(labels === '' ? `${family.name} ${formatValue(value)}` : `${family.name}{${labels}} ${formatValue(value)}`);
  }

  /** The text: each family's HELP and TYPE once, then its samples. */
  text(): string {
    const out: string[] = [];
    for (const [family, lines] of this.samples) {
      out.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`, ...lines);
    }
    return out.length === 0 ? '' : `${out.join('\n')}\n`;
  }
}

/** One sample of a scrape, as {@link parseSamples} reads it. */
export interface ParsedSample {
  name: string;
  labels: Labels;
  value: number;
}

/** The samples of a text-format scrape (comments skipped; what is not a sample line is skipped too). */
export function parseSamples(text: string): ParsedSample[] {
  const samples: ParsedSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \S+)?$/.exec(line);
    if (match === null) continue;
    const labels: Labels = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] ?? ''] = (pair[2] ?? '').replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1] ?? '', labels, value: Number(match[3]) });
  }
  return samples;
}
