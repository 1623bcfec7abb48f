-- 24: repositories compared without case (GitHub's names ignore it) where
-- the memory reads them. The similar-failures search reads a bounded set
-- of candidates, the newest memories of the type that match, in the
-- repository and elsewhere; the agent records read a repository's finished
-- agent attempts.
CREATE INDEX memories_type_lower_repo ON memories (failure_type, lower(repository), id);
CREATE INDEX attempts_agent_finished_lower ON attempts (lower(repository), agent)
  WHERE kind = 'agent' AND agent IS NOT NULL
    AND outcome IN ('success', 'ci_still_failing', 'agent_failed', 'timeout');
-- how many memories hold each lexeme (kept with each new memory): a search
-- keeps its rarest words, at the cost of one seek each, as on SQLite
CREATE TABLE memory_terms (
  term TEXT PRIMARY KEY,
  docs BIGINT NOT NULL
);
INSERT INTO memory_terms (term, docs)
  SELECT w, COUNT(*) FROM memories, unnest(tsvector_to_array(search)) w GROUP BY w;
