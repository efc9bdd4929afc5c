-- Live progress for the GraphQL subscription `sweepProgress`: every change of a trial's status
-- and every update of a sweep sends the sweep id on channel `ladder_sweep`. The API server holds
-- one LISTEN connection and fans the notifications out to its subscribers.
CREATE OR REPLACE FUNCTION ladder_notify_sweep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'trials' THEN
    PERFORM pg_notify('ladder_sweep', NEW.sweep_id);
  ELSE
    PERFORM pg_notify('ladder_sweep', NEW.id);
  END IF;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER trials_notify_sweep AFTER UPDATE OF status ON trials
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION ladder_notify_sweep();
--> statement-breakpoint
CREATE TRIGGER sweeps_notify_sweep AFTER UPDATE ON sweeps
  FOR EACH ROW EXECUTE FUNCTION ladder_notify_sweep();
