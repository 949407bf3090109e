import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { isUnavailable } from '../db/errors.js'
import { AppError, errors, ProblemSchema, type FieldError } from '../errors.js'

interface AjvIssue {
  instancePath: string
  message?: string
  keyword: string
  params: Record<string, unknown>
}

function fieldErrors(context: string, issues: AjvIssue[]): FieldError[] {
  return issues.map((issue) => {
    let path = `/${context}${issue.instancePath}`
    let message = issue.message ?? 'is invalid'
    if (issue.keyword === 'required') path += `/${String(issue.params.missingProperty)}`
    if (issue.keyword === 'additionalProperties') {
      path += `/${String(issue.params.additionalProperty)}`
      message = 'is not a known property'
    }
    return { path, message }
  })
}

export function toAppError(err: FastifyError): AppError {
  if (err instanceof AppError) return err
  if (err.validation) {
    const context = err.validationContext ?? 'body'
    return errors.validation(`request ${context} is invalid`, fieldErrors(context, err.validation as AjvIssue[]))
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return errors.validation('request body is too large', [{ path: '/body', message: err.message }])
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return errors.validation('request body is not valid JSON', [{ path: '/body', message: err.message }])
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError(415, 'unsupported_media_type', err.message)
    case 'FST_CSRF_MISSING_SECRET':
    case 'FST_CSRF_INVALID_TOKEN':
      return errors.csrf()
  }
  if (err instanceof SyntaxError && err.statusCode === 400) {
    return errors.validation('request body is not valid JSON', [{ path: '/body', message: err.message }])
  }
  if (isUnavailable(err)) return errors.unavailable('a backing store is unavailable, retry shortly', 2)
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return new AppError(err.statusCode, 'bad_request', err.message)
  }
  return new AppError(500, 'internal', 'an unexpected error occurred')
}

export function sendProblem(reply: FastifyReply, request: FastifyRequest, error: AppError) {
  if (error.headers) void reply.headers(error.headers)
  return reply.code(error.statusCode).type('application/problem+json').send(error.toProblem(request.id))
}

export default fp(
  async (app: FastifyInstance) => {
    app.addSchema(ProblemSchema)
    app.setErrorHandler((err: FastifyError, request, reply) => {
      const error = toAppError(err)
      if (error.statusCode >= 500) request.log.error({ err }, 'request failed')
      else request.log.info({ code: error.code, status: error.statusCode }, error.message)
      return sendProblem(reply, request, error)
    })
    app.setNotFoundHandler((request, reply) =>
      sendProblem(reply, request, new AppError(404, 'not_found', `no route for ${request.method} ${request.url.split('?')[0]}`))
    )
  },
  { name: 'errors' }
)
