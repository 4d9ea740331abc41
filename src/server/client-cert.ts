// Client-certificate authentication, once per TLS connection.
//
// The peer certificate is fixed by the handshake: Go's crypto/tls (which
// upstream's x509 authenticator reads, through the connection state) does not
// renegotiate on the server side, and neither does a TLS 1.3 connection. So
// the user a connection authenticates as is worked out on its first request
// and kept with the socket. `getPeerCertificate()` builds a fresh object of
// the whole certificate each call, which was ~7% of the server's CPU under
// 100 concurrent clients when done per request.

import type { TLSSocket } from 'node:tls';
import type { UserInfo } from '../apiserver/apiserver.ts';
import { identityOf } from '../pki/pki.ts';

const users = new WeakMap<TLSSocket, UserInfo | null>();

/** The user a verified client certificate on this connection names, or null (anonymous). */
export function connectionUser(socket: TLSSocket): UserInfo | null {
  let user = users.get(socket);
  if (user === undefined) {
    user = certificateUser(socket);
    users.set(socket, user);
  }
  return user;
}

function certificateUser(socket: TLSSocket): UserInfo | null {
  const cert = socket.authorized ? socket.getPeerCertificate() : undefined;
  if (!cert?.subject) return null;
  const id = identityOf(cert.subject as { CN?: string | string[]; O?: string | string[] });
  return { name: id.user, groups: [...id.groups, 'system:authenticated'] };
}
