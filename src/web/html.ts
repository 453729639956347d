/**
 * The one way pages are written: `html` escapes every interpolated value unless it is already Html
 * (the result of another `html` template or of `raw`). Arrays are joined, null/undefined/false render nothing.
 */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`]/g, (c) => ENTITIES[c]);
}

function render(value: unknown): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(value);
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new Html(out);
}

/** Trusted markup only (constants written in this code base), never user input. */
export function raw(text: string): Html {
  return new Html(text);
}

/** JSON for a data-* attribute: the attribute escaping of `html` keeps it intact. */
export function jsonAttr(value: unknown): string {
  return JSON.stringify(value);
}
