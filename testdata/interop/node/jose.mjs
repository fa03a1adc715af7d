// TEST-ONLY interop driver for host/envelope: the npm package `jose` (panva)
// as an independent JWS-in-JWE implementation.
//
//   node jose.mjs seal < {payload(b64), signJwk, encJwk, sigAlg, keyAlg, enc, zip, signKid, encKid}
//     -> {body}
//   node jose.mjs open < {body, decJwk, verifyJwks[], keyAlgs[], encs[], sigAlgs[]}
//     -> {payload(b64), jweHeader, jwsHeader}
// `jose` cannot do RSA1_5 (WebCrypto lacks RSAES-PKCS1-v1_5); see nodejose.mjs.
import { CompactEncrypt, CompactSign, compactDecrypt, compactVerify, importJWK } from 'jose';

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const req = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const mode = process.argv[2];

async function seal() {
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

async function open() {
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

try {
  const out = mode === 'seal' ? await seal() : mode === 'open' ? await open() : (() => { throw new Error(`mode ${mode}`); })();
  process.stdout.write(JSON.stringify(out));
} catch (e) {
  process.stderr.write(`jose.mjs ${mode}: ${e && e.stack || e}\n`);
  process.exit(2);
}
