import { IotcError } from './errors.js';

/**
 * The rules every reading's value obeys, whatever door it came through. Checked before the reading joins
 * a shared store batch: a value that cannot be stored must be refused alone, never fail its batch-mates.
 */
export interface ValueLimits {
  /** Deepest nesting of arrays and objects: `1` and `"a"` are depth 0, `[1]` depth 1, `{"a":[1]}` depth 2. */
  maxDepth: number;
  /** Longest JSON text of one value, in characters. */
  maxBytes: number;
}

export const DEFAULT_VALUE_LIMITS: ValueLimits = { maxDepth: 32, maxBytes: 65_536 };

/**
 * Checks one value and returns its JSON text, which the store keeps (so it is made once, here).
 * `where` names the reading in messages ("value", "status[3].value"). The walk is iterative: a value
 * nested thousands deep must not overflow the stack here either.
 */
export function checkValue(value: unknown, limits: ValueLimits, where = 'value'): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw nonFinite(where);
    return JSON.stringify(value);
  }
  if (typeof value === 'object' && value !== null) walk(value, limits, where);
  else if (typeof value !== 'string' && typeof value !== 'boolean' && value !== null) {
    throw new IotcError('E_VALIDATION', `${where}: must be JSON (number, string, boolean, object, array or null)`);
  }
  const json = JSON.stringify(value);
  if (json.length > limits.maxBytes) {
    throw new IotcError('E_VALIDATION', `${where}: the value's JSON is ${json.length} characters, more than the ${limits.maxBytes} allowed (max-value-bytes / IOTC_MAX_VALUE_BYTES)`);
  }
  return json;
}

/**
 * Every array and object under `root`, checked for depth and for numbers JSON cannot hold. Children that are
 * arrays or objects wait on a stack (no recursion, whatever the depth), made only when there is one: a flat value,
 * the common reading, is checked without it.
 */
function walk(root: object, limits: ValueLimits, where: string): void {
  let nodes: object[] | null = null;
  let depths: number[] | null = null;
  let node = root;
  let depth = 1;
  for (;;) {
    if (depth > limits.maxDepth) {
      throw new IotcError('E_VALIDATION', `${where}: nested deeper than ${limits.maxDepth} levels of arrays and objects (max-value-depth / IOTC_MAX_VALUE_DEPTH)`);
    }
    const children: readonly unknown[] = Array.isArray(node) ? node : Object.values(node);
    for (let i = 0; i < children.length; i++) {
      const child = children[i];
      if (typeof child === 'number') {
        if (!Number.isFinite(child)) throw nonFinite(where);
      } else if (typeof child === 'object' && child !== null) {
        (nodes ??= []).push(child);
        (depths ??= []).push(depth + 1);
      }
    }
    if (nodes === null || nodes.length === 0) return;
    node = nodes.pop()!;
    depth = depths!.pop()!;
  }
}

const nonFinite = (where: string) =>
  new IotcError('E_VALIDATION', `${where}: a number is too large to store (JSON numbers beyond ±1.7e308 become infinite); send it as a string`);

/** 2^53 − 1 has 16 digits: an integer literal of 15 digits or fewer is always exact. */
const LONG_DIGITS = /\d{16}/;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Refuses JSON text holding an integer literal that a JavaScript number cannot hold exactly
 * (beyond ±(2^53 − 1)): parsed, it would be stored rounded, silently. Numbers written with a fraction or
 * an exponent are decimals by intent and pass. Only text with a run of 16 digits is scanned at all,
 * so the common message costs one regular-expression test.
 */
export function checkIntegerLiterals(text: string): void {
  if (!LONG_DIGITS.test(text)) return;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) {
      inString = true;
      continue;
    }
    if (c !== 45 /* - */ && (c < 48 || c > 57)) continue;
    let end = i + 1;
    while (end < text.length && /[0-9.eE+-]/.test(text[end])) end++;
    const literal = text.slice(i, end);
    if (/^-?\d{16,}$/.test(literal) && (BigInt(literal) > MAX_SAFE || BigInt(literal) < -MAX_SAFE)) {
      const shown = literal.length > 40 ? `${literal.slice(0, 40)}…` : literal;
      throw new IotcError('E_VALIDATION', `the number ${shown} is beyond ±2^53 and would lose precision; send it as a string`);
    }
    i = end - 1;
  }
}
