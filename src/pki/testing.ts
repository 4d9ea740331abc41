// Test helpers: keys and certificate requests made with the openssl CLI, as
// a user would make them.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestRequestOptions {
  /** openssl req key options (default: a new P-256 key). */
  key?: string[];
  /** -addext values, e.g. 'subjectAltName=DNS:a,IP:10.0.0.1'. */
  ext?: string[];
}

/** A new key and a PEM CERTIFICATE REQUEST for subject (openssl form: /O=a/CN=b). */
export function makeTestCSR(subject: string, opts: TestRequestOptions = {}): { csr: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-test-csr-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const csr = execFileSync(
      'openssl',
      [
        'req',
        '-new',
        '-nodes',
        ...(opts.key ?? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']),
        '-keyout',
        keyFile,
        '-subj',
        subject,
        ...(opts.ext ?? []).flatMap((e) => ['-addext', e]),
      ],
      { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] },
    );
    return { csr, key: readFileSync(keyFile, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** spec.request as the API carries it: the PEM, base64-encoded. */
export const requestField = (csrPem: string): string => Buffer.from(csrPem).toString('base64');
