import Type, { type Static } from 'typebox'

export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'URI reference identifying the problem type' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'stable snake_case error code' }),
    requestId: Type.Optional(Type.String()),
    errors: Type.Optional(
      Type.Array(Type.Object({ path: Type.String(), message: Type.String() }), {
        description: 'present for validation errors'
      })
    )
  },
  { $id: 'Problem', title: 'Problem', description: 'RFC 9457 problem details' }
)
export type Problem = Static<typeof ProblemSchema>
export interface FieldError {
  path: string
  message: string
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  410: 'Gone',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable'
}

/** Every error the services throw on purpose; the error handler turns it into problem+json. */
export class AppError extends Error {
  override name = 'AppError'
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly errors?: FieldError[],
    readonly headers?: Record<string, string>
  ) {
    // Expected outcomes (401, 404, 429…) need no stack trace, and capturing one is the costliest part of
    // an error: a flood of bad requests must stay cheap to refuse.
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(message)
    Error.stackTraceLimit = limit
  }

  toProblem(requestId?: string): Problem {
    return {
      type: `https://autopilot.dev/problems/${this.code.replaceAll('_', '-')}`,
      title: TITLES[this.statusCode] ?? 'Error',
      status: this.statusCode,
      detail: this.message,
      code: this.code,
      ...(requestId ? { requestId } : {}),
      ...(this.errors ? { errors: this.errors } : {})
    }
  }
}

export const errors = {
  validation: (detail: string, fieldErrors: FieldError[]) => new AppError(400, 'validation_failed', detail, fieldErrors),
  unauthorized: (detail = 'missing or invalid credentials') => new AppError(401, 'unauthorized', detail),
  forbidden: (detail = 'your role does not allow this') => new AppError(403, 'forbidden', detail),
  csrf: () =>
    new AppError(
      403,
      'csrf_failed',
      'a request signed in by the session cookie that changes something must carry the x-csrf-token header that GET /v1/auth/session gives'
    ),
  notFound: (what: string) => new AppError(404, 'not_found', `${what} not found`),
  conflict: (detail: string) => new AppError(409, 'conflict', detail),
  invalidTransition: (detail: string) => new AppError(409, 'invalid_transition', detail),
  planLimit: (detail: string) => new AppError(402, 'plan_limit', detail),
  rateLimited: (retryAfterSeconds: number) =>
    new AppError(429, 'rate_limited', `rate limit exceeded, retry in ${retryAfterSeconds}s`, undefined, {
      'retry-after': String(retryAfterSeconds)
    }),
  tooManyStreams: (detail: string) => new AppError(429, 'too_many_streams', detail),
  unavailable: (detail: string, retryAfterSeconds = 1) =>
    new AppError(503, 'unavailable', detail, undefined, { 'retry-after': String(retryAfterSeconds) })
}

/** Response schemas for the error statuses a route can answer, keyed for Fastify's `response`. */
export function problemResponses(...statuses: number[]) {
  const out: Record<number, unknown> = {}
  for (const status of statuses) {
    out[status] = {
      description: TITLES[status] ?? 'Error',
      content: { 'application/problem+json': { schema: Type.Ref('Problem') } }
    }
  }
  return out
}
