// Finds a Chromium for Playwright. Playwright cannot download browsers on this network, so the
// Debian package is used: installed with apt when missing and we are root, else a clear error.
import { existsSync } from 'node:fs'
import { execSync } from 'node:child_process'

const DEFAULT = '/usr/lib/chromium/chromium'

export function ensureChromium() {
  const wanted = process.env.CHROMIUM_PATH ?? DEFAULT
  if (existsSync(wanted)) return wanted
  if (process.getuid?.() === 0) {
    console.log('[backward] installing Debian Chromium (apt-get install chromium)…')
    execSync('apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium', { stdio: 'inherit' })
    if (existsSync(wanted)) return wanted
  }
  throw new Error(`[backward] No Chromium at ${wanted}. Install Debian's "chromium" package, or set CHROMIUM_PATH to a Chromium binary.`)
}
