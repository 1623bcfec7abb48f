-- 15: a row of deliveries is left as it is up to 8160 bytes (its page):
-- with the default toast_tuple_target (about 2 KB) every insert and every
-- update of a row with a 3 KB body ran pglz over the body, which arrives
-- compressed already (store/body.h) and never shrank: 9% of the server's
-- CPU in bench/scale. Storage MAIN (0014) still keeps bodies in the row.
ALTER TABLE deliveries SET (toast_tuple_target = 8160);
