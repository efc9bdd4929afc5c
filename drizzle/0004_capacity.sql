CREATE TABLE "capacity_runs" (
	"id" text PRIMARY KEY NOT NULL,
	"scenario" text NOT NULL,
	"kind" text NOT NULL,
	"target" text,
	"status" text DEFAULT 'running' NOT NULL,
	"mode" text NOT NULL,
	"spec" jsonb NOT NULL,
	"thresholds" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"knee" double precision,
	"knee_is_lower_bound" boolean DEFAULT false NOT NULL,
	"stop_reason" text,
	"scaling" jsonb,
	"host" jsonb,
	"error" text,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "capacity_steps" (
	"run_id" text NOT NULL,
	"idx" integer NOT NULL,
	"generators" integer NOT NULL,
	"offered" double precision NOT NULL,
	"achieved" double precision NOT NULL,
	"p50_ms" double precision,
	"p95_ms" double precision,
	"p99_ms" double precision,
	"error_rate" double precision NOT NULL,
	"passed" boolean NOT NULL,
	"incomplete" text,
	"data" jsonb NOT NULL,
	"histogram" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "capacity_steps_run_id_idx_pk" PRIMARY KEY("run_id","idx")
);
--> statement-breakpoint
ALTER TABLE "capacity_steps" ADD CONSTRAINT "capacity_steps_run_id_capacity_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."capacity_runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "capacity_runs_started_idx" ON "capacity_runs" USING btree ("started_at","id");