import { createHash } from 'node:crypto'
import { events, expect, logInFromLoginPage, openApp, pending, test } from './fixtures.ts'

test('form interception with a submitter: formaction, name/value and file are saved and replayed', async ({ page, state }) => {
  const content = Buffer.from('a document\n'.repeat(100))
  await openApp(page)
  await page.fill('input[name=title]', 'My post')
  await page.setInputFiles('input[name=doc]', { name: 'doc.txt', mimeType: 'text/plain', buffer: content })
  await page.click('#save')
  // Intercepted (no native navigation to /api/form), saved, then the SDK hands off to login.
  await page.waitForURL(/\/login/)
  await openApp(page)
  const [action] = await pending(page)
  expect(action).toMatchObject({ method: 'POST', url: expect.stringMatching(/\/api\/form\?via=button$/) })

  await page.goto('/login?next=%2Fapp')
  await logInFromLoginPage(page)
  await page.waitForURL(/\/app$/)
  await page.waitForFunction(() => 'bw' in window)
  await expect.poll(async () => (await pending(page)).length).toBe(0)
  const { runs } = await state()
  expect(runs).toHaveLength(1)
  expect(runs[0]).toMatchObject({ path: '/api/form?via=button', key: action!.id })
  expect(runs[0]!.fields).toEqual({
    title: 'My post',
    doc: { name: 'doc.txt', type: 'text/plain', size: content.length, sha256: createHash('sha256').update(content).digest('hex') },
    intent: 'save',
  })
})

test('a logged-in submit goes through fetch with the other submitter\'s enctype, and reports the response', async ({ page, state }) => {
  await page.goto('/login?next=%2Fapp')
  await logInFromLoginPage(page)
  await page.waitForURL(/\/app$/)
  await openApp(page)
  await page.click('#draft')
  await expect.poll(async () => (await events(page)).filter((e) => e.name == 'form-response')).toEqual([
    expect.objectContaining({ status: 200 }),
  ])
  expect(page.url()).toMatch(/\/app$/)
  const { runs } = await state()
  expect(runs).toHaveLength(1)
  // Urlencoded (formenctype on the button): the file goes by name, as browsers send it.
  expect(runs[0]).toMatchObject({ path: '/api/form', contentType: expect.stringMatching(/^application\/x-www-form-urlencoded/), key: null })
  expect(runs[0]!.fields).toEqual({ title: 'hello', doc: '', intent: 'draft' })
})

test('after unsubscribing, forms submit natively again', async ({ page, state }) => {
  await page.goto('/login?next=%2Fapp')
  await logInFromLoginPage(page)
  await page.waitForURL(/\/app$/)
  await openApp(page)
  await page.evaluate(() => (window as unknown as { stopForms: () => void }).stopForms())
  await page.click('#draft')
  // A native submit navigates to the form's action (the API answers JSON).
  await page.waitForURL(/\/api\/form$/)
  const { runs } = await state()
  expect(runs).toHaveLength(1)
  expect(runs[0]!.fields).toEqual({ title: 'hello', doc: '', intent: 'draft' })
})
