// A validating webhook that allows everything, in its own process (as a
// webhook pod would be): HTTPS on loopback with the cert and key passed in
// the environment; prints its port on stdout.

import { createServer } from 'node:https';

const server = createServer({ cert: process.env.HOOK_CERT, key: process.env.HOOK_KEY }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const review = JSON.parse(Buffer.concat(chunks).toString());
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: { uid: review.request.uid, allowed: true },
      }),
    );
  });
});
server.listen(0, '127.0.0.1', () => console.log((server.address() as { port: number }).port));
