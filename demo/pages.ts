/** Server-rendered pages: the login page and the no-JavaScript page work without any script. */
import { html } from 'hono/html'
import type { HtmlEscapedString } from 'hono/utils/html'
import { PEOPLE } from './data.ts'

function layout(title: string, body: HtmlEscapedString | Promise<HtmlEscapedString>) {
  return html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${title} · backward demo</title>
    <link rel="stylesheet" href="/style.css" />
  </head>
  <body>
    <header class="bar"><a class="brand" href="/">backward <span>demo</span></a></header>
    <main class="page">${body}</main>
  </body>
</html>`
}

export function loginPage({ waiting, error, username }: { waiting: boolean; error?: string; username?: string }) {
  return layout(
    'Log in',
    html`<section class="card narrow">
      <h1>Log in</h1>
      ${waiting ? html`<p class="notice" role="status">Log in to continue. Anything you just did is waiting and will be sent after you log in.</p>` : ''}
      ${error ? html`<p class="error" role="alert">${error}</p>` : ''}
      <!-- No action: the form posts to its own URL, so ?next= stays with it (login() reads it), as in the README. -->
      <form method="post">
        <label>Username <input name="username" autocomplete="username" required value="${username ?? ''}" /></label>
        <label>Password <input name="password" type="password" autocomplete="current-password" required /></label>
        <label class="check"><input type="checkbox" name="remember" /> Remember me</label>
        <button type="submit">Log in</button>
      </form>
      <p class="hint">Demo account: username <code>demo</code>, password <code>demo1234</code>.</p>
    </section>`,
  )
}

export function noJsPage({ user, following, done }: { user: string | null; following: Set<string>; done: string | undefined }) {
  const doneName = PEOPLE.find((p) => p.id === done)?.name
  return layout(
    'No JavaScript',
    html`<section class="card">
      <h1>Follow, without JavaScript</h1>
      <p>These are plain HTML forms: no SDK, no script. Logged out, the server records your post and replays it once after you log in.</p>
      <p class="who">${user ? html`Logged in as <strong>${user}</strong>.` : 'You are not logged in.'} <a href="/">Back to the app</a></p>
      ${doneName ? html`<p class="ok" role="status">Following ${doneName} ✓</p>` : ''}
      <ul class="people">
        ${PEOPLE.map(
          (p) => html`<li>
            <div><strong>${p.name}</strong><br /><small>${p.bio}</small></div>
            <form method="post" action="/nojs/follow/${p.id}">
              ${following.has(p.id) ? html`<span class="badge">Following ✓</span>` : html`<button type="submit" aria-label="Follow ${p.name}">Follow</button>`}
            </form>
          </li>`,
        )}
      </ul>
    </section>`,
  )
}
