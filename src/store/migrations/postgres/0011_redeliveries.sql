-- 11: GitHub webhook deliveries healer asked GitHub to deliver again
-- (contract section 11). One row per delivery guid, inserted before the
-- request is made: the primary key is what keeps a guid from being
-- redelivered twice, whichever replica asks. outcome is 'pending' while
-- the request is under way, then 'requested' (GitHub answered 202) or
-- 'failed' (GitHub refused it, or the answer was lost: never asked again).
CREATE TABLE redeliveries (
  guid TEXT PRIMARY KEY,
  hook TEXT NOT NULL,
  github_id BIGINT NOT NULL,
  event_name TEXT,
  status_code INTEGER NOT NULL,
  requested_by TEXT NOT NULL,
  requested_ms BIGINT NOT NULL,
  outcome TEXT NOT NULL,
  detail TEXT,
  updated_ms BIGINT NOT NULL
);
CREATE INDEX redeliveries_requested ON redeliveries (requested_ms);
