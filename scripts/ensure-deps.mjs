// Installs dependencies on a fresh clone, so `npm test` and `npm run demo` are each one command.
import { existsSync } from 'node:fs'
import { execSync } from 'node:child_process'

if (!existsSync('node_modules/.package-lock.json')) {
  console.log('[backward] installing dependencies (npm ci)…')
  execSync(existsSync('package-lock.json') ? 'npm ci --no-audit --no-fund' : 'npm install --no-audit --no-fund', { stdio: 'inherit' })
}
