CREATE TABLE "analyses" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"sweep_id" text NOT NULL,
	"kind" text NOT NULL,
	"rung_index" integer DEFAULT -1 NOT NULL,
	"data" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"sweep_id" text,
	"trial_id" text,
	"type" text NOT NULL,
	"data" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"time" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "metric_points" (
	"trial_id" text NOT NULL,
	"name" text NOT NULL,
	"step" integer NOT NULL,
	"value" double precision NOT NULL,
	"time" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "metric_points_trial_id_name_step_pk" PRIMARY KEY("trial_id","name","step")
);
--> statement-breakpoint
CREATE TABLE "projects" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "projects_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "sweeps" (
	"id" text PRIMARY KEY NOT NULL,
	"project_id" text NOT NULL,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"spec" jsonb NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"code_version" text NOT NULL,
	"rerun" boolean DEFAULT false NOT NULL,
	"executor" text DEFAULT 'local' NOT NULL,
	"current_rung" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "trials" (
	"id" text PRIMARY KEY NOT NULL,
	"sweep_id" text NOT NULL,
	"rung_index" integer NOT NULL,
	"rung_name" text NOT NULL,
	"scale_value" double precision,
	"variant_index" integer NOT NULL,
	"variant_name" text NOT NULL,
	"variant" jsonb NOT NULL,
	"seed" integer NOT NULL,
	"config" jsonb NOT NULL,
	"identity" text NOT NULL,
	"status" text DEFAULT 'planned' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"wall_seconds" double precision DEFAULT 0 NOT NULL,
	"gpu_seconds" double precision DEFAULT 0 NOT NULL,
	"exit_reason" text,
	"result" jsonb,
	"reused_from" text,
	"execution" jsonb,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "analyses" ADD CONSTRAINT "analyses_sweep_id_sweeps_id_fk" FOREIGN KEY ("sweep_id") REFERENCES "public"."sweeps"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "events" ADD CONSTRAINT "events_sweep_id_sweeps_id_fk" FOREIGN KEY ("sweep_id") REFERENCES "public"."sweeps"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "metric_points" ADD CONSTRAINT "metric_points_trial_id_trials_id_fk" FOREIGN KEY ("trial_id") REFERENCES "public"."trials"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sweeps" ADD CONSTRAINT "sweeps_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "trials" ADD CONSTRAINT "trials_sweep_id_sweeps_id_fk" FOREIGN KEY ("sweep_id") REFERENCES "public"."sweeps"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "analyses_sweep_kind_rung_idx" ON "analyses" USING btree ("sweep_id","kind","rung_index");--> statement-breakpoint
CREATE INDEX "events_sweep_idx" ON "events" USING btree ("sweep_id","id");--> statement-breakpoint
CREATE INDEX "events_trial_idx" ON "events" USING btree ("trial_id","id");--> statement-breakpoint
CREATE INDEX "sweeps_project_created_idx" ON "sweeps" USING btree ("project_id","created_at");--> statement-breakpoint
CREATE INDEX "sweeps_status_idx" ON "sweeps" USING btree ("status");--> statement-breakpoint
CREATE INDEX "trials_sweep_rung_idx" ON "trials" USING btree ("sweep_id","rung_index");--> statement-breakpoint
CREATE INDEX "trials_identity_succeeded_idx" ON "trials" USING btree ("identity") WHERE status = 'succeeded';--> statement-breakpoint
CREATE INDEX "trials_status_idx" ON "trials" USING btree ("status");