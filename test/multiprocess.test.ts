import { describe, expect, it } from 'vitest'
import { apiKey, call, signup, useApp } from './helpers.js'

// Two API instances sharing Postgres and Redis, as two processes behind a load balancer would.
const a = useApp()
const b = useApp()

describe('in-process caches across API processes', () => {
  it('an API key revoked through one process fails on the next request to the other', async () => {
    const org = await signup(a.app)
    const key = await apiKey(a.app, org)
    expect((await call(b.app, key.key, { method: 'GET', url: '/v1/services' })).statusCode).toBe(200) // cached in b
    expect((await call(a.app, org.token, { method: 'DELETE', url: `/v1/api-keys/${key.id}` })).statusCode).toBe(204)
    expect((await call(b.app, key.key, { method: 'GET', url: '/v1/services' })).statusCode).toBe(401)
  })

  it('a service changed through one process is seen at once by the other (pub/sub invalidation)', async () => {
    const org = await signup(a.app)
    const key = (await apiKey(a.app, org)).key
    const created = await call(a.app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'shared', detection: { minSamples: 5 } } })
    const send = (value: number) => call(b.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: [{ service: 'shared', metric: 'lat', value }] } })
    for (let i = 0; i < 10; i++) await send(100 + (i % 3))
    expect((await send(101)).json().learning).toBe(0) // b has the service (minSamples 5) in its LRU

    await call(a.app, org.token, { method: 'PATCH', url: `/v1/services/${created.json().id}`, payload: { detection: { minSamples: 50 } } })
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect((await send(101)).json().learning).toBe(1) // b now scores with the new minSamples

    await call(a.app, org.token, { method: 'DELETE', url: `/v1/services/${created.json().id}` })
    await new Promise((resolve) => setTimeout(resolve, 100))
    await send(100)
    const services = (await call(a.app, org.token, { method: 'GET', url: '/v1/services' })).json().items
    // b re-registered the name as a new service instead of writing into the deleted one.
    expect(services).toHaveLength(1)
    expect(services[0].id).not.toBe(created.json().id)
  })
})
