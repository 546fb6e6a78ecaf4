/** A tiny cookie jar for `app.request()` tests: keeps name=value pairs from Set-Cookie, drops deletions. */
export interface Jar {
  cookies: Map<string, string>
  header(): string
  store(res: Response): void
}

export function createJar(initial: Record<string, string> = {}): Jar {
  const cookies = new Map(Object.entries(initial))
  return {
    cookies,
    header: () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
    store(res) {
      for (const line of res.headers.getSetCookie()) {
        const [pair, ...attrs] = line.split(';')
        const eq = pair!.indexOf('=')
        const name = pair!.slice(0, eq).trim()
        const value = pair!.slice(eq + 1).trim()
        const maxAge = attrs.map((a) => a.trim()).find((a) => /^max-age=/i.test(a))
        if (maxAge !== undefined && Number(maxAge.split('=')[1]) <= 0) cookies.delete(name)
        else cookies.set(name, value)
      }
    },
  }
}

/** Parses one Set-Cookie line into its name, value and attributes (lower-cased names). */
export function parseSetCookie(line: string): { name: string; value: string; attrs: Record<string, string | true> } {
  const [pair, ...rest] = line.split(';')
  const eq = pair!.indexOf('=')
  const attrs: Record<string, string | true> = {}
  for (const part of rest) {
    const [k, ...v] = part.trim().split('=')
    attrs[k!.toLowerCase()] = v.length ? v.join('=') : true
  }
  return { name: pair!.slice(0, eq).trim(), value: pair!.slice(eq + 1).trim(), attrs }
}
