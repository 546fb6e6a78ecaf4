/**
 * Property-based tests (fast-check) for the shared protocol: the login-required problem decoder.
 * `isSafeRedirect` has its own properties in safe-redirect.test.ts.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LOGIN_REQUIRED_TYPE, parseLoginRequired } from '../../src/shared/protocol.ts'

/** What the decoder promises to accept: an object with backward's type and a loginUrl of 1 to 4096 characters. */
function isValidProblem(value: unknown): value is Record<string, unknown> & { loginUrl: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const v = value as Record<string, unknown>
  return v.type === LOGIN_REQUIRED_TYPE && typeof v.loginUrl === 'string' && v.loginUrl.length >= 1 && v.loginUrl.length <= 4096
}

/** Objects near the valid shape, so both branches get thousands of cases, not just the rejecting one. */
const nearProblem = fc.record(
  {
    type: fc.oneof(fc.constant(LOGIN_REQUIRED_TYPE), fc.constant('urn:backward:store-unavailable'), fc.constant(LOGIN_REQUIRED_TYPE.toUpperCase()), fc.jsonValue()),
    title: fc.oneof(fc.string(), fc.jsonValue()),
    status: fc.oneof(fc.constant(401), fc.integer(), fc.jsonValue()),
    loginUrl: fc.oneof(fc.string({ maxLength: 40 }), fc.constant(''), fc.constant('x'.repeat(4096)), fc.constant('x'.repeat(4097)), fc.jsonValue()),
    detail: fc.oneof(fc.string(), fc.jsonValue()),
    __proto__: fc.jsonValue(),
    constructor: fc.jsonValue(),
  },
  { requiredKeys: [] },
)

describe('parseLoginRequired (properties)', () => {
  it('never throws on any JSON value, and accepts exactly the valid problems, copying only known members', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), nearProblem, fc.json().map((text) => JSON.parse(text) as unknown)), (value) => {
        const result = parseLoginRequired(value)
        if (!isValidProblem(value)) {
          expect(result).toBeNull()
          return
        }
        expect(result).not.toBeNull()
        expect(result!.type).toBe(LOGIN_REQUIRED_TYPE)
        expect(result!.status).toBe(401)
        expect(result!.loginUrl).toBe(value.loginUrl)
        expect(typeof result!.title).toBe('string')
        if (typeof value.title === 'string') expect(result!.title).toBe(value.title)
        if (typeof value.detail === 'string') expect(result!.detail).toBe(value.detail)
        else expect('detail' in result!).toBe(false)
        // Nothing else rides along (no __proto__, constructor or unknown member reaches the client).
        expect(Object.keys(result!).every((k) => ['type', 'title', 'status', 'loginUrl', 'detail'].includes(k))).toBe(true)
        expect(Object.getPrototypeOf(result)).toBe(Object.prototype)
      }),
      { numRuns: 5000 },
    )
  })
})
