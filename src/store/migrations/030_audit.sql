-- The audit trail (docs/AUDIT.md): every operator, inspector and administrator action, hash-chained.
-- Each entry's hash is SHA-256 over the previous entry's hash and a canonical text of this entry's fields
-- (src/audit/canonical.ts), so changing, removing or inserting an entry breaks the chain at that entry.

CREATE TABLE audit_log (
  -- 1, 2, 3 … without gaps: assigned under a transaction-scoped lock, never by a sequence (which leaves holes).
  seq             bigint PRIMARY KEY CHECK (seq > 0),
  -- The database clock when the entry was appended, microseconds, UTC.
  time            timestamptz NOT NULL,
  -- The principal's name ('system' for the server's own steps).
  actor           text NOT NULL,
  -- A dotted verb: alert.acknowledged, unit.created, user.changed …
  action          text NOT NULL,
  subject_kind    text NOT NULL,
  subject_id      text NOT NULL,
  -- The subject's jurisdiction, for scoped reads; NULL for system-wide records. No foreign key: the trail must
  -- stand on its own, whatever happens to the registry.
  jurisdiction_id text,
  -- The exact canonical JSON text that was hashed (not jsonb, which reorders keys and normalises numbers).
  detail          text NOT NULL CHECK (jsonb_typeof(detail::jsonb) = 'object'),
  prev_hash       text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  hash            text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX audit_log_subject ON audit_log (subject_kind, subject_id, seq);
CREATE INDEX audit_log_jurisdiction ON audit_log (jurisdiction_id, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_time ON audit_log (time);

-- Append-only at the database too: UPDATE, DELETE and TRUNCATE are refused whoever asks. The table's owner or a
-- superuser can still disable or drop these triggers; that is what the hash chain is for.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
