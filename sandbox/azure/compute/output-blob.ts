/**
 * What the VM's run-command handler does with `outputBlobUri`: creates the append blob and appends
 * the stream, authorised only by the SAS in the URI (the sandbox VM has no managed identity).
 * The storage behind it is Azurite, the real emulator.
 */
import { AnonymousCredential, AppendBlobClient } from "@azure/storage-blob";

// An append block holds at most 4 MiB in older service versions (Azurite accepts that size).
const BLOCK = 4 * 1024 * 1024;

export async function writeAppendBlob(uri: string, text: string): Promise<void> {
  const blob = new AppendBlobClient(uri, new AnonymousCredential());
  await blob.createIfNotExists();
  const data = Buffer.from(text, "utf8");
  for (let at = 0; at < data.length; at += BLOCK) {
    const part = data.subarray(at, Math.min(data.length, at + BLOCK));
    await blob.appendBlock(part, part.length);
  }
}
