/**
 * A webhook's own JSON body: any JSON value whose strings may name the event's fields as {{field}}. A string
 * that is exactly one placeholder becomes the field's value as it is (a number stays a number, an object an
 * object); a placeholder inside longer text becomes text. Keys are left as written.
 */
import type { AutomationEvent } from './delivery.js';

export const TEMPLATE_FIELDS = ['event', 'device', 'rule', 'name', 'sensor', 'value', 'time'] as const;
type Field = (typeof TEMPLATE_FIELDS)[number];

/** The longest template, as JSON text: a body, not a document. */
export const MAX_TEMPLATE_CHARS = 4096;

const PLACEHOLDER = /\{\{\s*([A-Za-z_]+)\s*\}\}/g;
const WHOLE = /^\{\{\s*([A-Za-z_]+)\s*\}\}$/;

function strings(value: unknown, visit: (s: string) => void): void {
  if (typeof value === 'string') visit(value);
  else if (Array.isArray(value)) for (const v of value) strings(v, visit);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) strings(v, visit);
}

/** Null if the template can be used; else what is wrong with it, in words. */
export function templateProblem(template: unknown): string | null {
  let json: string | undefined;
  try {
    json = JSON.stringify(template);
  } catch {
    return 'must be JSON';
  }
  if (json === undefined) return 'must be JSON';
  if (json.length > MAX_TEMPLATE_CHARS) return `is ${json.length} characters of JSON, more than the ${MAX_TEMPLATE_CHARS} allowed`;
  const unknown = new Set<string>();
  strings(template, (s) => {
    for (const m of s.matchAll(PLACEHOLDER)) if (!(TEMPLATE_FIELDS as readonly string[]).includes(m[1])) unknown.add(m[1]);
  });
  if (unknown.size > 0) return `names no such field: ${[...unknown].map((u) => `{{${u}}}`).join(', ')} (use ${TEMPLATE_FIELDS.map((f) => `{{${f}}}`).join(', ')})`;
  return null;
}

/** The body for one event. */
export function renderTemplate(template: unknown, e: AutomationEvent): unknown {
  const field = (name: string): unknown => e[name as Field] ?? null;
  const text = (name: string): string => {
    const v = field(name);
    return typeof v === 'string' ? v : JSON.stringify(v);
  };
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      const whole = WHOLE.exec(v);
      return whole ? field(whole[1]) : v.replace(PLACEHOLDER, (_, name: string) => text(name));
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(template);
}
