// The error Go's json.Unmarshal gives for text decoded into a
// map[string]interface{}: upstream checks docker config Secrets that way and
// puts the error text in the field error, so the messages are Go's.

import { goQuote } from '../validation.ts';

class ScanError extends Error {}

// encoding/json quoteChar.
function quoteChar(c: string): string {
  if (c === "'") return `'\\''`;
  if (c === '"') return `'"'`;
  return `'${goQuote(c).slice(1, -1)}'`;
}

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isHex = (c: string | undefined) => c !== undefined && /^[0-9a-fA-F]$/.test(c);

/** Go's error for json.Unmarshal(text, &map[string]interface{}{}), or undefined if it decodes. */
export function goJSONMapError(text: string): string | undefined {
  let i = 0;
  const n = text.length;
  const eof = () => new ScanError('unexpected end of JSON input');
  const bad = (context: string) =>
    new ScanError(`invalid character ${quoteChar(text[i] as string)} ${context}`);
  const ws = () => {
    while (i < n && ' \t\r\n'.includes(text[i] as string)) i++;
  };
  const need = () => {
    if (i >= n) throw eof();
    return text[i] as string;
  };

  const string = () => {
    i++;
    for (;;) {
      const c = need();
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        i++;
        const e = need();
        if ('bfnrt"\\/'.includes(e)) i++;
        else if (e === 'u') {
          i++;
          for (let k = 0; k < 4; k++) {
            if (!isHex(need())) throw bad('in \\u hexadecimal character escape');
            i++;
          }
        } else throw bad('in string escape code');
        continue;
      }
      if (c < ' ') throw bad('in string literal');
      i++;
    }
  };

  const number = () => {
    if (text[i] === '-') {
      i++;
      if (!isDigit(need())) throw bad('in numeric literal');
    }
    if (text[i] === '0') i++;
    else while (isDigit(text[i])) i++;
    if (text[i] === '.') {
      i++;
      if (!isDigit(need())) throw bad('after decimal point in numeric literal');
      while (isDigit(text[i])) i++;
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (need() === '+' || text[i] === '-') i++;
      if (!isDigit(need())) throw bad('in exponent of numeric literal');
      while (isDigit(text[i])) i++;
    }
  };

  const literal = (word: string) => {
    i++;
    for (const expected of word.slice(1)) {
      if (need() !== expected) throw bad(`in literal ${word} (expecting '${expected}')`);
      i++;
    }
  };

  let depth = 0;
  const value = (): void => {
    ws();
    const c = need();
    // encoding/json's scanner gives up at this nesting depth.
    if ((c === '{' || c === '[') && ++depth > 10000) throw new ScanError('exceeded max depth');
    if (c === '{') {
      i++;
      ws();
      if (need() === '}') {
        i++;
        depth--;
        return;
      }
      for (;;) {
        ws();
        if (need() !== '"') throw bad('looking for beginning of object key string');
        string();
        ws();
        if (need() !== ':') throw bad('after object key');
        i++;
        value();
        ws();
        const sep = need();
        i++;
        if (sep === '}') {
          depth--;
          return;
        }
        if (sep !== ',') {
          i--;
          throw bad('after object key:value pair');
        }
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (need() === ']') {
        i++;
        depth--;
        return;
      }
      for (;;) {
        value();
        ws();
        const sep = need();
        i++;
        if (sep === ']') {
          depth--;
          return;
        }
        if (sep !== ',') {
          i--;
          throw bad('after array element');
        }
      }
    }
    if (c === '"') string();
    else if (c === '-' || isDigit(c)) number();
    else {
      const word = ['true', 'false', 'null'].find((w) => w[0] === c);
      if (!word) throw bad('looking for beginning of value');
      literal(word);
    }
  };

  try {
    value();
    ws();
    if (i < n) throw bad('after top-level value');
  } catch (err) {
    if (err instanceof ScanError) return err.message;
    throw err;
  }
  const first = text.trimStart()[0];
  const kind =
    first === '['
      ? 'array'
      : first === '"'
        ? 'string'
        : first === 't' || first === 'f'
          ? 'bool'
          : first === 'n' || first === '{'
            ? ''
            : 'number';
  return kind ? `json: cannot unmarshal ${kind} into Go value of type map[string]interface {}` : undefined;
}
