ALTER TABLE "trials" ADD COLUMN "recorded_attempt" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Trials that finished before this column existed had their last attempt recorded already.
UPDATE "trials" SET "recorded_attempt" = "attempts" WHERE "status" IN ('succeeded', 'failed', 'cancelled', 'skipped');
