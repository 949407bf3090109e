/** Every key the service writes to the state Redis, in one place (see DESIGN.md, key schema). */
export const keys = {
  apiKeyAuth: (sha256: string) => `auth:apikey:${sha256}`,
  rateLimitPrefix: 'rate_limit:'
} as const

export const TTL = {
  apiKeyAuthSeconds: 300
} as const
