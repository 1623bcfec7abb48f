-- 14: a delivery's body stays in its row (storage MAIN). Bodies arrive
-- compressed (LZ4 or deflate, store/body.h), so with the default
-- (EXTENDED) a 3 KB body, past the 2 KB toast threshold, was compressed
-- again in vain and moved to the TOAST table: a second heap insert and an
-- index insert per delivery. MAIN still moves a body out of the row when
-- the row would not fit its page.
ALTER TABLE deliveries ALTER COLUMN body SET STORAGE MAIN;
