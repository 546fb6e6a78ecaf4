import { describe, expect, it } from 'vitest'
import { encodeForm } from '../../src/client/forms.ts'

// The DOM half (reading a <form> and its submitter, interceptForms) runs in real Chromium:
// tests/browser/forms.spec.ts. Here: the encodings.
const data = () => {
  const d = new FormData()
  d.append('q', 'a b&c')
  d.append('file', new File(['bytes'], 'f.txt', { type: 'text/plain' }))
  d.append('go', 'now')
  return d
}

describe('encodeForm', () => {
  it('GET puts the data in the query (files by name), replacing the action\'s query', () => {
    expect(encodeForm('https://app.test/s?old=1#h', 'get', 'multipart/form-data', data())).toEqual([
      'https://app.test/s?q=a+b%26c&file=f.txt&go=now#h',
      {},
    ])
  })

  it('dialog is not a POST either', () => {
    expect(encodeForm('https://app.test/s', 'dialog', 'text/plain', new FormData())[1]).toEqual({})
  })

  it('POST urlencoded sends URLSearchParams (files by name)', async () => {
    const [url, init] = encodeForm('https://app.test/p', 'post', 'application/x-www-form-urlencoded', data())
    expect(url).toBe('https://app.test/p')
    expect(init.method).toBe('POST')
    expect(init.body).toBeInstanceOf(URLSearchParams)
    expect(String(init.body)).toBe('q=a+b%26c&file=f.txt&go=now')
  })

  it('POST multipart sends the FormData itself, files included', () => {
    const d = data()
    expect(encodeForm('https://app.test/p', 'post', 'multipart/form-data', d)[1]).toEqual({ method: 'POST', body: d })
  })

  it('POST text/plain sends name=value lines with CRLF, as browsers do', async () => {
    const [, init] = encodeForm('https://app.test/p', 'post', 'text/plain', data())
    expect(init.body).toBe('q=a b&c\r\nfile=f.txt\r\ngo=now\r\n')
    const request = new Request('https://app.test/p', init)
    expect(request.headers.get('content-type')).toBe('text/plain;charset=UTF-8')
  })
})
