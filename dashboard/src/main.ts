/**
 * The clinicians' dashboard: login, then the fleet board (#/), the incoming-patients board
 * (#/incoming) or a unit view (#/unit/ID), under at most BANNER_CAP alert banners and the alert
 * bar that counts the rest and opens the full alert list. The team view (top bar) decides what is
 * in the clinician's face. All state arrives over the live socket (live-client.ts → store.ts);
 * rendering is coalesced to one pass per animation frame however many messages arrived.
 */
import { AlertPanel } from './alert-panel.js'
import { AlertBanner } from './alerts-view.js'
import { currentSession, login, logout, type SessionInfo } from './api.js'
import { h, replace } from './dom.js'
import { FleetView } from './fleet-view.js'
import { IncomingView } from './incoming-view.js'
import { LiveClient, type LiveState } from './live-client.js'
import { Store } from './store.js'
import { TeamView } from './team-view.js'
import { UnitView } from './unit-view.js'

const root = document.getElementById('app')!

function toast (msg: string): void {
  const t = h('div', { class: 'toast', role: 'status' }, msg)
  document.body.append(t)
  setTimeout(() => { t.remove() }, 5000)
}

function showLogin (message = ''): void {
  document.body.classList.remove('alarm-high', 'alarm-medium')
  const name = h('input', { name: 'name', autocomplete: 'username', required: true, autofocus: true })
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })
  const error = h('p', { class: 'error', role: 'alert' }, message)
  const form = h('form', { class: 'login', onsubmit: ev => {
    ev.preventDefault()
    error.textContent = ''
    login(name.value, password.value)
      .then(s => { startApp(s, true) })
      .catch((err: Error & { status?: number }) => {
        error.textContent = err.status === 429 ? 'Too many attempts: wait a minute.' : err.message
      })
  } },
  h('h1', {}, 'Ambulink'),
  h('p', { class: 'muted' }, 'Live ambulance telemetry — clinicians only'),
  h('label', {}, 'User', name),
  h('label', {}, 'Password', password),
  h('button', { type: 'submit' }, 'Log in'),
  error)
  replace(root, form)
}

/** Back to a clean login page: a reload drops every timer, socket and audio context at once. */
function restart (message: string): void {
  sessionStorage.setItem('ambulink-login-message', message)
  location.hash = '#/'
  location.reload()
}

function startApp (session: SessionInfo, gesture: boolean): void {
  const store = new Store()
  const live = new LiveClient(store)
  const team = new TeamView(toast)
  let schedule = (): void => {}
  const panel = new AlertPanel(store, team, toast, () => { schedule() })
  const banner = new AlertBanner(store, toast, { view: team, openList: () => { panel.toggle(true) } })
  if (gesture) banner.sounder.enable()
  const status = h('span', { class: 'conn' }, 'connecting…')
  const view = h('div', { class: 'view' })
  const bar = h('header', { class: 'topbar' },
    h('span', { class: 'brand' }, 'Ambulink'),
    h('a', { href: '#/', class: 'nav-fleet' }, 'Fleet'),
    h('a', { href: '#/incoming', class: 'nav-incoming' }, 'Incoming'),
    h('button', { type: 'button', class: 'nav-alerts', onclick: () => { panel.toggle() } }, 'Alerts'),
    team.el,
    status,
    h('span', { class: 'spacer' }),
    h('span', { class: 'who' }, `${session.user} (${session.role})`),
    h('button', { type: 'button', class: 'logout', onclick: () => { live.stop(); void logout().then(() => { restart('') }) } }, 'Log out'))
  replace(root, bar, banner.el, view, panel.el, h('div', { class: 'frame-flash', 'aria-hidden': 'true' }))

  const openUnit = (unit: string): void => { location.hash = `#/unit/${encodeURIComponent(unit)}` }
  const fleet = new FleetView(store, openUnit, team)
  const incoming = new IncomingView(store, team, openUnit, toast)
  let board: 'fleet' | 'incoming' = 'fleet'
  let unitView: UnitView | null = null
  let dirty = true
  let raf = 0
  schedule = (): void => {
    dirty = true
    if (raf === 0) raf = requestAnimationFrame(render)
  }
  function render (): void {
    raf = 0
    if (!dirty) return
    dirty = false
    banner.render()
    if (unitView !== null) unitView.render()
    else if (board === 'incoming') incoming.render()
    else fleet.render()
    panel.render()
  }
  team.onChange(schedule)
  void team.load()

  const route = (): void => {
    const m = /^#\/unit\/(.+)$/.exec(location.hash)
    const unit = m === null ? null : decodeURIComponent(m[1]!)
    if (unitView !== null && unitView.unit !== unit) {
      live.unwatch(unitView.unit)
      unitView.stop()
      unitView = null
    }
    banner.setFocus(unit)
    if (unit !== null && unitView === null) {
      unitView = new UnitView(store, unit, () => { location.hash = '#/' }, toast)
      replace(view, unitView.el)
      unitView.start()
      live.watch(unit)
    } else if (unit === null) {
      board = location.hash === '#/incoming' ? 'incoming' : 'fleet'
      replace(view, board === 'incoming' ? incoming.el : fleet.el)
    }
    document.body.dataset.page = unit !== null ? 'unit' : board
    schedule()
  }
  window.addEventListener('hashchange', route)
  store.subscribe(schedule)
  setInterval(schedule, 1000)
  live.onState = (s: LiveState) => {
    status.textContent = s === 'live' ? '● live' : s === 'connecting' ? 'connecting…' : '○ reconnecting…'
    status.className = `conn ${s}`
  }
  live.onSessionEnded = () => { restart('Your session ended. Please log in again.') }
  route()
  live.start()
}

const pending = sessionStorage.getItem('ambulink-login-message') ?? ''
sessionStorage.removeItem('ambulink-login-message')
void currentSession().then(s => { if (s === null) showLogin(pending); else startApp(s, false) })
  .catch(() => { showLogin('The gateway is not answering.') })
