import * as node from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createAead, nodeAead, webAead } from '../../src/server/aead.ts'

const SECRET = 's'.repeat(40)
const plain = new TextEncoder().encode('{"iat":1,"exp":2,"d":{"a":"ünï ✓"}}')

describe('AEAD for the cookie store', () => {
  const paths = { node: nodeAead([SECRET], node as never), web: webAead([SECRET]) }
  it.each([
    ['node', 'web'],
    ['web', 'node'],
    ['node', 'node'],
    ['web', 'web'],
  ] as const)('what the %s path seals, the %s path opens (same key derivation, same layout)', async (from, to) => {
    const sealed = await paths[from].seal(plain)
    expect(sealed.length).toBe(12 + plain.length + 16)
    expect(await paths[to].open(sealed)).toEqual(plain)
  })

  it('createAead uses the Node path on Node', async () => {
    const sealed = await createAead([SECRET]).seal(plain)
    expect(await paths.web.open(sealed)).toEqual(plain)
  })

  describe('security', () => {
    it.each(['node', 'web'] as const)('%s: a flipped bit, a wrong secret, or too few bytes open to null', async (path) => {
      const sealed = await paths[path].seal(plain)
      for (let i = 0; i < sealed.length; i += 7) {
        const forged = sealed.slice()
        forged[i]! ^= 1
        expect(await paths[path].open(forged)).toBeNull()
      }
      const other = path === 'node' ? nodeAead(['o'.repeat(40)], node as never) : webAead(['o'.repeat(40)])
      expect(await other.open(sealed)).toBeNull()
      expect(await paths[path].open(sealed.subarray(0, 27))).toBeNull()
    })

    it('every seal uses a fresh IV', async () => {
      const a = await paths.node.seal(plain)
      const b = await paths.node.seal(plain)
      expect(Buffer.from(a.subarray(0, 12)).equals(Buffer.from(b.subarray(0, 12)))).toBe(false)
    })
  })
})
