import { createBackward, type BackwardAction } from 'backward'
import { isSafeRedirect } from 'backward/shared'

interface Person {
  id: string
  name: string
  bio: string
  following: boolean
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
let people: Person[] = []
let toastTimer: ReturnType<typeof setTimeout> | undefined

function toast(text: string, kind: 'info' | 'ok' | 'error' = 'info') {
  const el = $('toast')
  el.textContent = text
  el.className = `toast ${kind === 'info' ? '' : kind}`
  el.hidden = false
  clearTimeout(toastTimer)
  toastTimer = setTimeout(() => (el.hidden = true), 8000)
}

/** Says what an action is, in words a person uses. */
function describe(action: Pick<BackwardAction, 'method' | 'url'>): { noun: string; done: string } {
  const path = new URL(action.url).pathname
  const follow = path.match(/^\/api\/follow\/([\w-]+)$/)
  if (follow) {
    const name = people.find((p) => p.id === follow[1])?.name ?? follow[1]!
    return action.method === 'DELETE' ? { noun: `unfollow of ${name}`, done: `Unfollowed ${name}` } : { noun: 'follow', done: `Following ${name} ✓` }
  }
  if (path === '/api/posts') return { noun: 'post', done: 'Posted ✓' }
  return { noun: `${action.method} ${path}`, done: 'Done ✓' }
}

const bw = createBackward({
  onLoginRequired({ loginUrl, action }) {
    toast(`Your ${describe(action).noun} will be sent after you log in. Taking you to the login page…`)
    // Leave the message up long enough to read, then go.
    if (isSafeRedirect(loginUrl, { allowedHosts: [location.host] })) setTimeout(() => location.assign(loginUrl), 1200)
  },
})

bw.on('replayed', async ({ action, response }) => {
  if (response.ok) toast(describe(action).done, 'ok')
  else toast(`Your ${describe(action).noun} could not be sent: ${response.status} ${await problemText(response)}`, 'error')
  void refresh()
})
bw.on('failed', ({ action, reason }) => {
  toast(`Your ${describe(action).noun} was not sent (${reason === 'user-mismatch' ? 'it was made by another account' : reason}).`, 'error')
  void refreshQueue()
})
bw.on('expired', ({ action }) => {
  toast(`Your ${describe(action).noun} waited too long and was dropped.`, 'error')
  void refreshQueue()
})
bw.on('error', ({ error }) => toast(error.message.replace(/^\[backward\] /, ''), 'error'))
bw.on('queued', () => void refreshQueue())

async function problemText(response: Response): Promise<string> {
  try {
    const body = await response.clone().json()
    return body.error ?? body.title ?? ''
  } catch {
    return ''
  }
}

// --- account
async function renderAccount() {
  const { user } = (await (await fetch('/api/me')).json()) as { user: string | null }
  const el = $('account')
  el.replaceChildren()
  if (user) {
    const who = document.createElement('span')
    who.textContent = `Logged in as ${user}`
    const form = document.createElement('form')
    form.method = 'post'
    form.action = '/logout'
    const button = document.createElement('button')
    button.type = 'submit'
    button.textContent = 'Log out'
    form.append(button)
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      await bw.clear() // nothing saved outlives the login
      form.submit()
    })
    el.append(who, form)
  } else {
    const link = document.createElement('a')
    link.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`
    link.textContent = 'Log in'
    el.append(link)
  }
}

// --- people
async function renderPeople() {
  people = await (await fetch('/api/people')).json()
  const list = $('people')
  list.replaceChildren(
    ...people.map((person) => {
      const li = document.createElement('li')
      const info = document.createElement('div')
      const name = document.createElement('strong')
      name.textContent = person.name
      const bio = document.createElement('small')
      bio.textContent = person.bio
      info.append(name, document.createElement('br'), bio)
      const button = document.createElement('button')
      button.type = 'button'
      button.textContent = person.following ? 'Following ✓' : 'Follow'
      button.className = person.following ? 'secondary' : ''
      button.setAttribute('aria-label', `${person.following ? 'Unfollow' : 'Follow'} ${person.name}`)
      button.addEventListener('click', () => toggleFollow(person, button))
      li.append(info, button)
      return li
    }),
  )
}

async function toggleFollow(person: Person, button: HTMLButtonElement) {
  button.disabled = true
  try {
    const res = await bw.fetch(`/api/follow/${person.id}`, { method: person.following ? 'DELETE' : 'POST' })
    if (res.ok) {
      toast(person.following ? `Unfollowed ${person.name}` : `Following ${person.name} ✓`, 'ok')
      await refresh()
    } else if (res.status !== 401) {
      toast(`Could not follow ${person.name}: ${res.status} ${await problemText(res)}`, 'error')
    }
  } catch (error) {
    toast(`Could not follow ${person.name}: ${(error as Error).message}`, 'error')
  } finally {
    button.disabled = false
  }
}

// --- compose
async function renderPosts() {
  const posts = (await (await fetch('/api/posts')).json()) as { id: number; author: string; text: string; image: { url: string; name: string; size: number } | null }[]
  $('posts').replaceChildren(
    ...posts.reverse().map((post) => {
      const li = document.createElement('li')
      const head = document.createElement('strong')
      head.textContent = post.author
      const text = document.createElement('p')
      text.textContent = post.text
      li.append(head, text)
      if (post.image) {
        const img = document.createElement('img')
        img.src = post.image.url
        img.alt = `Image attached by ${post.author}: ${post.image.name}`
        li.append(img)
      }
      return li
    }),
  )
}

const compose = $<HTMLFormElement>('compose')
compose.addEventListener('submit', async (event) => {
  event.preventDefault()
  const button = compose.querySelector('button')!
  button.disabled = true
  try {
    const res = await bw.submit(compose, event.submitter)
    if (res.ok) {
      toast('Posted ✓', 'ok')
      compose.reset()
      await refresh()
    } else if (res.status !== 401) {
      toast(`Could not post: ${res.status} ${await problemText(res)}`, 'error')
    }
  } catch (error) {
    toast(`Could not post: ${(error as Error).message}`, 'error')
  } finally {
    button.disabled = false
  }
})

// --- what backward holds, and what the server ran
function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  return s < 60 ? `${s} s ago` : `${Math.round(s / 60)} min ago`
}

async function refreshQueue() {
  const actions = await bw.pending().catch(() => [])
  $('queue').replaceChildren(
    ...actions.map((action) => {
      const li = document.createElement('li')
      const url = new URL(action.url)
      li.textContent = `${action.method} ${url.pathname} · ${age(Date.now() - action.createdAt)}`
      return li
    }),
  )
}

async function refreshActivity() {
  const activity = (await (await fetch('/api/activity')).json()) as { user: string; kind: string; target: string; via: string }[]
  $('activity').replaceChildren(
    ...activity.slice(-8).reverse().map((a) => {
      const li = document.createElement('li')
      li.textContent = `${a.user} ${a.kind === 'post' ? 'posted' : a.kind === 'follow' ? 'followed' : 'unfollowed'} ${a.kind === 'post' ? `#${a.target}` : a.target} (${a.via})`
      return li
    }),
  )
}

async function refresh() {
  await Promise.all([renderAccount(), renderPeople(), renderPosts(), refreshQueue(), refreshActivity()])
}

// --- routing between the two views
function show() {
  const compose = location.pathname === '/compose'
  $('people-view').hidden = compose
  $('compose-view').hidden = !compose
  for (const link of document.querySelectorAll<HTMLAnchorElement>('nav a[data-route]')) {
    if ((link.dataset.route === 'compose') === compose) link.setAttribute('aria-current', 'page')
    else link.removeAttribute('aria-current')
  }
}
for (const link of document.querySelectorAll<HTMLAnchorElement>('nav a[data-route]')) {
  link.addEventListener('click', (event) => {
    event.preventDefault()
    history.pushState(null, '', link.href)
    show()
  })
}
addEventListener('popstate', show)

show()
void refresh()
setInterval(() => void refreshQueue(), 1000)
