-- The dashboard finds customers by a name or email prefix, whatever the case:
-- `lower(col) LIKE 'prefix%'` is answered from these (text_pattern_ops compares bytes, so it
-- serves LIKE prefixes under any database collation).
CREATE INDEX customers_name_prefix ON customers (lower(name) text_pattern_ops);
CREATE INDEX customers_email_prefix ON customers (lower(email) text_pattern_ops);
