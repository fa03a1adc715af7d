// TEST-ONLY interop driver for host/envelope: the npm package `node-jose` as
// an independent RSA1_5 JWE producer (the npm `jose` package cannot do
// RSA1_5). Only sealing: Node.js refuses PKCS#1 v1.5 decryption since the
// Marvin fix (CVE-2023-46809).
//
//   node nodejose.mjs seal < {payload(b64), signJwk, encJwk, sigAlg, keyAlg, enc, zip, signKid, encKid}
//     -> {body}
import jose from 'node-jose';

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const req = JSON.parse(Buffer.concat(chunks).toString('utf8'));

try {
  if (process.argv[2] !== 'seal') throw new Error(`mode ${process.argv[2]}`);
  const signKey = await jose.JWK.asKey({ ...req.signJwk, kid: req.signKid });
  const jws = await jose.JWS.createSign(
    { format: 'compact', fields: { alg: req.sigAlg, kid: req.signKid } },
    { key: signKey, reference: false, header: { alg: req.sigAlg } },
  ).update(Buffer.from(req.payload, 'base64')).final();
  const encKey = await jose.JWK.asKey({ ...req.encJwk, kid: req.encKid });
  const fields = { alg: req.keyAlg, enc: req.enc, kid: req.encKid };
  if (req.zip) fields.zip = 'DEF';
  const body = await jose.JWE.createEncrypt(
    { format: 'compact', contentAlg: req.enc, zip: !!req.zip, fields },
    { key: encKey, reference: false, header: { alg: req.keyAlg } },
  ).update(Buffer.from(jws)).final();
  process.stdout.write(JSON.stringify({ body }));
} catch (e) {
  process.stderr.write(`nodejose.mjs: ${e && e.stack || e}\n`);
  process.exit(2);
}
