import { mkdirSync } from 'node:fs'
import type { Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { buildTestApp } from './helpers/app.js'
import { launchChromium } from './helpers/browser.js'

const ARTIFACTS = 'test-artifacts'
// A browser on a machine busy with the rest of the suite can take a while; tap's 30 s is too tight.
t.setTimeout(180_000)

async function openDocs (t: Test): Promise<{ page: Page, cspViolations: string[] }> {
  // As a new user runs it: development, with the demo users the login example names.
  const { app } = await buildTestApp(t, 'memory', { NODE_ENV: 'development', USERS_FILE: '' })
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })
  const browser = await launchChromium(t)
  const page = await browser.newPage()
  // The page runs under the security headers (helmet, Swagger UI's own CSP): anything they block shows here.
  const cspViolations: string[] = []
  page.on('console', message => { if (/Content.Security.Policy/i.test(message.text())) cspViolations.push(message.text()) })
  await page.goto(`${baseUrl}/docs`)
  await page.locator('.opblock-tag-section').first().waitFor()
  return { page, cspViolations }
}

/** Expands an operation, tries it out as it stands and returns the live response's status and body. */
async function tryOperation (page: Page, id: string): Promise<{ status: string, body: string }> {
  const operation = page.locator(`#${id}`)
  if (!(await operation.locator('.try-out__btn').isVisible())) await operation.locator('.opblock-summary').click()
  const tryOut = operation.locator('.try-out__btn')
  if ((await tryOut.textContent())?.trim() === 'Try it out') await tryOut.click()
  const clear = operation.locator('button.btn-clear')
  if (await clear.isVisible()) await clear.click() // the previous try's response
  await operation.locator('button.execute').click()
  const live = operation.locator('.live-responses-table .response')
  await live.first().waitFor()
  const status = (await live.locator('.response-col_status').first().textContent())?.trim() ?? ''
  const body = (await live.locator('.response-col_description').first().textContent()) ?? ''
  return { status, body }
}

t.test('Swagger UI, as the README walks it: 401 first, log in with the example, Authorize, then the profile', async (t) => {
  const { page, cspViolations } = await openDocs(t)

  const anonymous = await tryOperation(page, 'operations-api-getProfile')
  t.equal(anonymous.status, '401', 'without authorizing: 401')
  t.match(anonymous.body, /Authentication required/)

  const login = await tryOperation(page, 'operations-auth-login')
  t.equal(login.status, '200', 'the login operation with its example body logs the demo user in')
  const token = /"access_token": "([\w.-]+)"/.exec(login.body)?.[1]
  t.type(token, 'string', 'the response shows an access token')

  await page.locator('button.authorize').first().click()
  const bearerForm = page.locator('.auth-container').filter({ hasText: 'bearerAuth' })
  await bearerForm.locator('input').fill(String(token))
  await bearerForm.locator('button.authorize').click()
  await page.locator('button.btn-done').first().click()

  const authorized = await tryOperation(page, 'operations-api-getProfile')
  t.equal(authorized.status, '200', 'after authorizing: 200')
  t.match(authorized.body, /"username": "demo"/, 'the live response shows the user')

  mkdirSync(ARTIFACTS, { recursive: true })
  await page.locator('#operations-api-getProfile').screenshot({ path: `${ARTIFACTS}/swagger-ui-profile.png` })

  await page.reload()
  await page.locator('.opblock-tag-section').first().waitFor()
  const afterReload = await tryOperation(page, 'operations-api-getProfile')
  t.equal(afterReload.status, '200', 'persistAuthorization: still authorized after a reload')
  t.same(cspViolations, [], 'no Content-Security-Policy violation on the way')
})
