import { eq } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { organizations } from '../../db/schema/index.js'

/** The organization's labels that, besides __name__, name a distinct metric; undefined for no such organization. */
export function findMetricLabels(exec: Executor, organizationId: string, options: { lock?: boolean } = {}): Promise<string[] | undefined> {
  const query = exec.select({ extraLabels: organizations.metricLabelAllowlist }).from(organizations).where(eq(organizations.id, organizationId))
  return (options.lock ? query.for('update') : query).then((rows) => rows[0]?.extraLabels)
}

export async function setMetricLabels(exec: Executor, organizationId: string, extraLabels: string[]): Promise<string[]> {
  const [row] = await exec
    .update(organizations)
    .set({ metricLabelAllowlist: extraLabels })
    .where(eq(organizations.id, organizationId))
    .returning({ extraLabels: organizations.metricLabelAllowlist })
  return row!.extraLabels
}
