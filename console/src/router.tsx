// A tiny History-API router for paths under /console.
import type { ComponentChildren, TargetedMouseEvent } from 'preact'
import { useEffect, useState } from 'preact/hooks'

export const BASE = '/console'
const CHANGE = 'console:navigate'

export interface Location {
  /** The path below /console, always starting with '/' (e.g. '/incidents/42'). */
  path: string
  /** The query string parameters. */
  query: URLSearchParams
  /** The full path with query, as the browser shows it (for "come back here" links). */
  href: string
}

function current(): Location {
  const { pathname, search } = window.location
  let path = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname
  if (path === '' || path === '/') path = '/'
  else path = path.replace(/\/+$/, '')
  return { path, query: new URLSearchParams(search), href: pathname + search }
}

/** The console page shown right now, as the browser shows it (path, query and fragment). */
export function currentHref(): string {
  const { pathname, search, hash } = window.location
  return pathname + search + hash
}

/**
 * The sign-in page's URL, coming back to `next` (a console URL) afterwards; the sign-in page itself is
 * never a `next`, so signing in from there lands on the default page.
 */
export function loginUrl(next?: string): string {
  const login = `${BASE}/login`
  if (!next || next === login || next.startsWith(`${login}?`) || next.startsWith(`${login}/`) || next.startsWith(`${login}#`)) return login
  return `${login}?next=${encodeURIComponent(next)}`
}

/** Goes to a console URL: `to` is absolute ('/console/...') or relative to /console ('/incidents'). */
export function navigate(to: string, options: { replace?: boolean } = {}): void {
  const url = to.startsWith(BASE) ? to : BASE + to
  if (url === window.location.pathname + window.location.search) return
  if (options.replace) window.history.replaceState(null, '', url)
  else window.history.pushState(null, '', url)
  window.dispatchEvent(new Event(CHANGE))
}

export function useLocation(): Location {
  const [location, setLocation] = useState(current)
  useEffect(() => {
    const update = () => setLocation(current())
    window.addEventListener('popstate', update)
    window.addEventListener(CHANGE, update)
    return () => {
      window.removeEventListener('popstate', update)
      window.removeEventListener(CHANGE, update)
    }
  }, [])
  return location
}

/** Matches '/incidents/:id' against a path; the decoded parameters, or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const want = pattern.split('/')
  const got = path.split('/')
  if (want.length !== got.length) return null
  const params: Record<string, string> = {}
  for (let i = 0; i < want.length; i++) {
    const part = want[i]!
    const value = got[i]!
    if (part.startsWith(':')) {
      if (!value) return null
      params[part.slice(1)] = decodeURIComponent(value)
    } else if (part !== value) return null
  }
  return params
}

interface AnchorProps {
  href: string
  children?: ComponentChildren
  class?: string
  title?: string
  'aria-current'?: 'page' | undefined
  'aria-label'?: string
  onClick?: (event: TargetedMouseEvent<HTMLAnchorElement>) => void
}

/** An <a> that navigates without reloading (modified clicks keep the browser's behaviour). */
export function Link({ href, onClick, ...rest }: AnchorProps) {
  const url = href.startsWith(BASE) || /^[a-z]+:/i.test(href) ? href : BASE + href
  const handle = (event: TargetedMouseEvent<HTMLAnchorElement>) => {
    onClick?.(event)
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return
    if (!url.startsWith(BASE)) return
    event.preventDefault()
    navigate(url)
  }
  return <a href={url} onClick={handle} {...rest} />
}
