ALTER TABLE "incidents" ADD COLUMN "series" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "organizations" DROP COLUMN "metric_label_allowlist";