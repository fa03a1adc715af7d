// TEST-ONLY interop driver for host/envelope: the npm package `node-jose`, an
// independent implementation that (unlike `jose`) does RSA1_5. Same request
// and response shapes as jose.mjs.
//
// Node.js refuses RSA PKCS#1 v1.5 decryption since its Marvin fix
// (CVE-2023-46809); `open` of RSA1_5 therefore needs
// `node --security-revert=CVE-2023-46809`, acceptable for a test-only oracle.
import jose from 'node-jose';

async function seal(req) {
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
  return { body };
}

async function open(req) {
  const dks = jose.JWK.createKeyStore();
  await dks.add(req.decJwk);
  const dec = await jose.JWE.createDecrypt(dks, { algorithms: [...req.keyAlgs, ...req.encs] }).decrypt(req.body);
  const vks = jose.JWK.createKeyStore();
  for (const k of req.verifyJwks) await vks.add(k);
  const ver = await jose.JWS.createVerify(vks, { algorithms: req.sigAlgs }).verify(dec.plaintext.toString('utf8'));
  return {
    payload: Buffer.from(ver.payload).toString('base64'),
    jweHeader: dec.protected ? Object.fromEntries(dec.protected.map((k) => [k, dec.header[k]])) : dec.header,
    jwsHeader: ver.header,
  };
}

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const mode = process.argv[2];
const fn = { seal, open }[mode];
if (!fn) {
  process.stderr.write(`nodejose.mjs: unknown mode ${mode}\n`);
  process.exit(2);
}
const out = [];
for (const req of Array.isArray(input) ? input : [input]) {
  try {
    out.push(await fn(req));
  } catch (e) {
    out.push({ error: String(e && e.stack || e) });
  }
}
process.stdout.write(JSON.stringify(Array.isArray(input) ? out : out[0]));
