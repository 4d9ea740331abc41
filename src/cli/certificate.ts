// `skiff certificate check|rotate`, as `k3s certificate` (src/server/certificates.ts).

import { parseArgs } from 'node:util';
import { CERTIFICATE_SERVICES, checkCertificates, rotateCertificates } from '../server/certificates.ts';

export const certificateUsage = `Usage: skiff certificate check|rotate [flags]

  check [-o json]             every certificate of the data dir: subject, usages,
                              expiry and status (WARNING within 90 days, EXPIRED)
  rotate [--service NAME]...  reissue leaf certificates from the cluster CA, with
                              the same names, for a year (default: every service:
                              ${Object.keys(CERTIFICATE_SERVICES).join(', ')}). A running server serves its
                              new certificate within seconds, without a restart;
                              the CA stays, so clients that trust it carry on.
                              The old files are kept in server/tls/rotated-<time>/.

Flags:
  --data-dir DIR              the server's data dir (default /var/lib/skiff as root, ~/.skiff otherwise)
`;

export async function runCertificate(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(certificateUsage);
    return sub ? 0 : 2;
  }
  let values: { 'data-dir'?: string; service?: string[]; output?: string };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        'data-dir': { type: 'string' },
        service: { type: 'string', multiple: true },
        output: { type: 'string', short: 'o' },
      },
      strict: true,
    }));
  } catch (err) {
    console.error(`skiff certificate: ${(err as Error).message}\n\n${certificateUsage}`);
    return 2;
  }
  const dataDir =
    values['data-dir'] ?? (process.getuid?.() === 0 ? '/var/lib/skiff' : `${process.env.HOME ?? '.'}/.skiff`);
  try {
    if (sub === 'check') {
      const certs = checkCertificates(dataDir);
      if (!certs.length) {
        console.error(
          `skiff certificate check: no certificates under ${dataDir}: give the server's --data-dir`,
        );
        return 1;
      }
      if (values.output === 'json') {
        console.log(
          JSON.stringify(
            certs.map((c) => ({ ...c, notAfter: c.notAfter.toISOString() })),
            null,
            2,
          ),
        );
        return 0;
      }
      const rows = [
        ['FILENAME', 'SUBJECT', 'USAGES', 'EXPIRES', 'RESIDUAL TIME', 'STATUS'],
        ...certs.map((c) => [
          c.file.slice(dataDir.length + 1),
          c.subject,
          c.isCA ? 'CertSign' : c.usages.join(',') || '-',
          c.notAfter.toISOString().replace('.000', ''),
          `${c.daysLeft}d`,
          c.status,
        ]),
      ];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows)
        console.log(
          r
            .map((c, i) => c.padEnd(widths[i]!))
            .join('  ')
            .trimEnd(),
        );
      return 0;
    }
    if (sub === 'rotate') {
      const { rotated, backup } = rotateCertificates(dataDir, values.service);
      for (const f of rotated) console.log(`rotated ${f}`);
      console.log(`the previous certificates are in ${backup}`);
      return 0;
    }
    console.error(`skiff certificate: unknown subcommand ${JSON.stringify(sub)}\n\n${certificateUsage}`);
    return 2;
  } catch (err) {
    console.error(`skiff certificate ${sub}: ${(err as Error).message}`);
    return 1;
  }
}
