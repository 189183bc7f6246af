-- Record a field as this run saw it (present) or as gone from describe (not present).
INSERT INTO {catalog} (sobject, field, column_name, kind, salesforce_type, calculated, present, updated_at)
VALUES (%(sobject)s, %(field)s, %(column_name)s, %(kind)s, %(salesforce_type)s, %(calculated)s, %(present)s, now())
ON CONFLICT (sobject, field) DO UPDATE
SET column_name = EXCLUDED.column_name, kind = EXCLUDED.kind, salesforce_type = EXCLUDED.salesforce_type,
    calculated = EXCLUDED.calculated, present = EXCLUDED.present, updated_at = now();
