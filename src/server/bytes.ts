/**
 * Joins byte arrays into one fresh buffer (also for a single part: stream chunks and Node buffers may
 * view a larger or shared buffer).
 * @example
 * concatBytes([iv, ciphertext]) // Uint8Array of iv.length + ciphertext.length bytes
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.byteLength
  }
  return out
}
