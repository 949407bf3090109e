/**
 * What repositories and lifecycles report about the domain, without HTTP: services map these to
 * problem+json (`errors` in src/errors.ts), the worker logs or retries them.
 */
export class DomainError extends Error {
  override name = 'DomainError'
}

/** A unique name or key is already taken. */
export class AlreadyExistsError extends DomainError {
  override name = 'AlreadyExistsError'
  constructor(readonly entity: string, readonly field: string) {
    super(`a ${entity} with this ${field} already exists`)
  }
}

/** A state change that the current state does not allow. */
export class InvalidTransitionError extends DomainError {
  override name = 'InvalidTransitionError'
}
