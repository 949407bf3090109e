import { Ajv, type Options } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifyInstance, FastifySchemaCompiler } from 'fastify'

function build(options: Options) {
  const ajv = new Ajv({
    // Unknown properties are an error, never silently dropped.
    removeAdditional: false,
    useDefaults: true,
    // The first error only: a body of a million bad items must not cost a million error objects (nor an
    // answer of megabytes); the client fixes one problem at a time.
    allErrors: false,
    strict: false,
    ...options
  })
  addFormats.default(ajv)
  return ajv
}

/**
 * Bodies are validated as sent (a string is not a number), while query strings and path params,
 * which are text on the wire, are coerced to the declared types. A missing body is checked as `{}`, so
 * it reports the missing fields, and a body whose fields are all optional may be left out.
 */
export function installValidators(app: FastifyInstance) {
  const strict = build({ coerceTypes: false })
  const coercing = build({ coerceTypes: 'array' })
  const compiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
    if (httpPart !== 'body') return coercing.compile(schema as object)
    const validate = strict.compile(schema as object)
    const validateBody = (body: unknown) => {
      const valid = validate(body ?? {})
      validateBody.errors = validate.errors
      return valid
    }
    validateBody.errors = validate.errors
    return validateBody
  }
  app.setValidatorCompiler(compiler)
}
