-- 24: the memory's words as its index folds them. memory_terms held the
-- ASCII runs of a word ("berweisung" of "Überweisung") where the index
-- holds the word folded ("uberweisung"), and the repository token hashed
-- the name with its case. A row here makes the store index every memory
-- again when it is next opened (hl_sq_memory_upgrade), which deletes it.
CREATE TABLE memory_reindex (
  one INTEGER PRIMARY KEY CHECK (one = 1)
);
INSERT INTO memory_reindex (one) SELECT 1 WHERE EXISTS (SELECT 1 FROM memories);
-- the agent records read a repository's finished agent attempts compared
-- without case
CREATE INDEX attempts_agent_finished_nocase ON attempts (repository COLLATE NOCASE, agent)
  WHERE kind = 'agent' AND agent IS NOT NULL
    AND outcome IN ('success', 'ci_still_failing', 'agent_failed', 'timeout');
