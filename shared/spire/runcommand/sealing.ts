/**
 * The activity's side of sealed run-command output (see ./script.ts): a one-off RSA key pair per
 * run-command, whose public half travels to the VM and whose private half never leaves this
 * process; unwrapping the script's AES + HMAC key, and opening each sealed stream.
 */
import {
  constants,
  createDecipheriv,
  createHmac,
  generateKeyPairSync,
  type KeyObject,
  privateDecrypt,
  timingSafeEqual,
} from "node:crypto";

export interface SealKeyPair {
  /** SPKI PEM, a run-command parameter. */
  publicKeyPem: string;
  privateKey: KeyObject;
}

/** The script's key: AES-256 for the streams, HMAC-SHA256 over IV and ciphertext. */
export interface SealKey {
  encryption: Buffer;
  mac: Buffer;
}

/** A fresh 2048-bit RSA key pair (about 50 ms): one per run-command, never reused or stored. */
export function newSealKeyPair(): SealKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(), privateKey };
}

/** The `key` line's value: RSA-OAEP-SHA256 of the key's 128 hex characters. */
export function unwrapSealKey(wrappedBase64: string, privateKey: KeyObject): SealKey {
  const hex = privateDecrypt(
    { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    Buffer.from(wrappedBase64, "base64"),
  ).toString("latin1");
  if (!/^[0-9a-f]{128}$/.test(hex)) throw new Error("the wrapped output key is malformed");
  return { encryption: Buffer.from(hex.slice(0, 64), "hex"), mac: Buffer.from(hex.slice(64), "hex") };
}

/** `e:<iv hex>:<mac hex>:<base64>` → the plaintext (still gzip), after checking the MAC. */
export function openStream(field: string, key: SealKey): Buffer {
  const m = /^e:([0-9a-f]{32}):([0-9a-f]{64}):([A-Za-z0-9+/=]*)$/.exec(field);
  if (!m) throw new Error("not a sealed stream");
  const ivHex = m[1] as string;
  const ciphertext = Buffer.from(m[3] as string, "base64");
  const expected = createHmac("sha256", key.mac).update(ivHex, "latin1").update(ciphertext).digest();
  if (!timingSafeEqual(expected, Buffer.from(m[2] as string, "hex")))
    throw new Error("a sealed stream failed its MAC");
  const decipher = createDecipheriv("aes-256-cbc", key.encryption, Buffer.from(ivHex, "hex"));
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}
