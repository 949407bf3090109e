type Hook = (...args: never[]) => unknown

/**
 * From an onRoute hook: gives one route a hook of its own, after any it declared. Route-level hooks cost
 * nothing on the routes that do not need them, and run after the instance's hooks of the same phase.
 */
export function appendRouteHook(route: object, phase: 'preValidation' | 'preHandler' | 'onSend', hook: Hook): void {
  const options = route as Record<string, Hook | Hook[] | undefined>
  const declared = options[phase]
  options[phase] = declared === undefined ? [hook] : Array.isArray(declared) ? [...declared, hook] : [declared, hook]
}
