import { createAuthClient, SignedOutError } from 'token-auth-client'

const { apiUrl } = await (await fetch('/config.json')).json()
const auth = createAuthClient({ baseUrl: apiUrl, transport: 'cookie' })

// What the page saw, for people and for the browser test: answers by status, sign-outs.
const seen = { calls: 0, statuses: {}, failures: [], signedIn: false, signedOut: 0 }
globalThis.spa = seen

const $ = (id) => document.getElementById(id)
let polling = false

function showLogin () {
  polling = false
  seen.signedIn = false
  $('app').hidden = true
  $('login').hidden = false
}

function showProfile (profile) {
  seen.signedIn = true
  $('login').hidden = true
  $('app').hidden = false
  $('username').textContent = profile.username
  $('roles').textContent = profile.roles.join(', ')
}

auth.onSignedOut(() => {
  if (seen.signedIn) seen.signedOut++ // a session this tab had has ended
  showLogin()
})

/** Calls the API every 250 ms while signed in: the kit refreshes as needed, across tabs. */
async function poll () {
  // eslint-disable-next-line no-unmodified-loop-condition -- showLogin() (a sign-out) clears it
  while (polling) {
    try {
      const response = await auth.fetch('/api/profile')
      if (!polling) break // signed out while the call was on its way: its answer is stale
      seen.calls++
      seen.statuses[response.status] = (seen.statuses[response.status] ?? 0) + 1
      $('calls').textContent = String(seen.calls)
      if (response.ok) showProfile(await response.json())
    } catch (err) {
      if (!(err instanceof SignedOutError)) seen.failures.push(String(err))
      $('failures').textContent = String(seen.failures.length)
    }
    await new Promise(resolve => setTimeout(resolve, 250))
  }
}

function start () {
  if (polling) return
  polling = true
  poll()
}

$('login').addEventListener('submit', async (event) => {
  event.preventDefault()
  const form = new FormData(event.target)
  try {
    await auth.login({ username: String(form.get('username')), password: String(form.get('password')) })
    $('login-error').textContent = ''
    start()
  } catch (err) {
    $('login-error').textContent = err.message
  }
})

$('logout').addEventListener('click', () => { auth.logout() })

// A tab opened after another signed in works from the shared cookies, without logging in.
try {
  const response = await auth.fetch('/api/profile')
  if (response.ok) {
    showProfile(await response.json())
    start()
  } else {
    showLogin()
  }
} catch {
  showLogin()
}
