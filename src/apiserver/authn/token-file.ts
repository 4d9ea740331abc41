// Bearer tokens from a static file (--token-auth-file), as upstream's
// tokenfile authenticator: CSV lines `token,user,uid[,"group1,group2"]`.

import { timingSafeEqual } from 'node:crypto';
import type { UserInfo } from './user.ts';

export type TokenUser = UserInfo & { uid: string };

/** RFC 4180 fields of one line: commas separate, double quotes quote, "" is a quote. */
export function csvFields(line: string): string[] {
  const fields: string[] = [];
  let cur = '';
  let quoted = false;
  let atStart = true;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === ',') {
      fields.push(cur);
      cur = '';
      atStart = true;
      continue;
    } else if (ch === '"' && atStart) quoted = true;
    else if (!(atStart && (ch === ' ' || ch === '\t'))) cur += ch; // leading space trimmed, as Go's TrimLeadingSpace
    if (ch !== ' ' && ch !== '\t') atStart = false;
  }
  if (quoted) throw new Error('unterminated quoted field');
  fields.push(cur);
  return fields;
}

/** Parses the file; throws on a line with fewer than 3 columns, as upstream. */
export function parseTokenFile(text: string, path = 'token file'): Map<string, TokenUser> {
  const tokens = new Map<string, TokenUser>();
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    const record = csvFields(line);
    if (record.length < 3)
      throw new Error(
        `token file '${path}' must have at least 3 columns (token, user name, user uid), found ${record.length} (line ${i + 1})`,
      );
    const [token, name, uid, groups] = record as [string, string, string, string | undefined];
    if (token === '') return; // upstream warns and skips an empty token
    tokens.set(token, { name, uid, groups: groups ? groups.split(',') : [] });
  });
  return tokens;
}

export class TokenFileAuthenticator {
  readonly #tokens: Map<string, TokenUser>;

  constructor(tokens: Map<string, TokenUser>) {
    this.#tokens = tokens;
  }

  /** The user for `token`, or undefined (not ours: the next authenticator may know it). */
  authenticate(token: string): TokenUser | undefined {
    // Compare in constant time against every entry, so timing says nothing about which prefix matched.
    let found: TokenUser | undefined;
    const want = Buffer.from(token);
    for (const [t, user] of this.#tokens) {
      const have = Buffer.from(t);
      if (have.length === want.length && timingSafeEqual(have, want)) found = user;
    }
    return found && { ...found, groups: [...found.groups, 'system:authenticated'] };
  }
}
