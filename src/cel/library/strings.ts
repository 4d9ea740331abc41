// The string functions of cel-go's strings extension that Kubernetes
// enables (ext.Strings, version 2) and the library lacks: charAt, replace,
// reverse and strings.quote. indexOf, lastIndexOf, lowerAscii, upperAscii,
// split, substring, trim and join are the library's own.

import type { Environment } from '@marcbachmann/cel-js';

/** CEL strings index by code point, not by UTF-16 unit. */
const codePoints = (s: string): string[] => [...s];

function replace(s: string, from: string, to: string, limit: bigint): string {
  if (limit === 0n) return s;
  if (limit < 0n) return s.split(from).join(to);
  let out = '';
  let rest = s;
  let n = limit;
  while (n > 0n) {
    const at = rest.indexOf(from);
    if (at < 0) break;
    out += rest.slice(0, at) + to;
    rest = rest.slice(at + from.length);
    n--;
    // An empty `from` matches between every code point, as Go's strings.Replace.
    if (from === '' && rest !== '') {
      const [first] = codePoints(rest);
      out += first;
      rest = rest.slice(first!.length);
    }
  }
  return out + rest;
}

/** strconv.Quote's escaping, which strings.quote follows. */
function quote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c === 7) out += '\\a';
    else if (c === 8) out += '\\b';
    else if (c === 12) out += '\\f';
    else if (c === 11) out += '\\v';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

class StringsNamespace {}

export function registerStrings(env: Environment): void {
  env.registerFunction('string.charAt(int): string', (s: string, i: bigint) => {
    const cps = codePoints(s);
    if (i < 0n || i > BigInt(cps.length)) throw new Error(`index out of range: ${i}`);
    return cps[Number(i)] ?? '';
  });
  env.registerFunction('string.replace(string, string): string', (s: string, a: string, b: string) =>
    replace(s, a, b, -1n),
  );
  env.registerFunction('string.replace(string, string, int): string', replace);
  env.registerFunction('string.reverse(): string', (s: string) => codePoints(s).reverse().join(''));
  env.registerType('StringsNamespace', StringsNamespace);
  env.registerConstant('strings', 'StringsNamespace', new StringsNamespace());
  env.registerFunction('StringsNamespace.quote(string): string', (_ns: unknown, s: string) => quote(s));
}
