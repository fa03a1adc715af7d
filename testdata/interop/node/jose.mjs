// TEST-ONLY interop driver for host/envelope: the npm package `jose` (panva)
// as an independent JWS-in-JWE implementation. Reads a JSON request, or an
// array of them, on stdin and writes the result(s) as JSON on stdout.
//
//   node jose.mjs seal  {payload(b64), signJwk, encJwk, sigAlg, keyAlg, enc, zip, signKid, encKid} -> {body}
//   node jose.mjs open  {body, decJwk, verifyJwks[], keyAlgs[], encs[], sigAlgs[]}
//                       -> {payload(b64), jweHeader, jwsHeader} or {error}
// `jose` cannot do RSA1_5 (WebCrypto lacks RSAES-PKCS1-v1_5); see nodejose.mjs.
import { CompactEncrypt, CompactSign, compactDecrypt, compactVerify, importJWK } from 'jose';

async function seal(req) {
  const signKey = await importJWK(req.signJwk, req.sigAlg);
  const sh = { alg: req.sigAlg };
  if (req.signKid) sh.kid = req.signKid;
  const jws = await new CompactSign(Buffer.from(req.payload, 'base64')).setProtectedHeader(sh).sign(signKey);
  const encKey = await importJWK(req.encJwk, req.keyAlg);
  const eh = { alg: req.keyAlg, enc: req.enc };
  if (req.encKid) eh.kid = req.encKid;
  if (req.zip) eh.zip = 'DEF';
  const body = await new CompactEncrypt(new TextEncoder().encode(jws)).setProtectedHeader(eh).encrypt(encKey);
  return { body };
}

async function open(req) {
  const dec = await compactDecrypt(req.body, (h) => importJWK(req.decJwk, h.alg), {
    keyManagementAlgorithms: req.keyAlgs,
    contentEncryptionAlgorithms: req.encs,
  });
  const jws = new TextDecoder().decode(dec.plaintext);
  const ver = await compactVerify(jws, (h) => {
    const jwk = req.verifyJwks.find((k) => !h.kid || k.kid === h.kid);
    if (!jwk) throw new Error(`no verification key for kid ${h.kid}`);
    return importJWK(jwk, h.alg);
  }, { algorithms: req.sigAlgs });
  return {
    payload: Buffer.from(ver.payload).toString('base64'),
    jweHeader: dec.protectedHeader,
    jwsHeader: ver.protectedHeader,
  };
}

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const mode = process.argv[2];
const fn = { seal, open }[mode];
if (!fn) {
  process.stderr.write(`jose.mjs: unknown mode ${mode}\n`);
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
