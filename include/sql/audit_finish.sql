UPDATE {schema}.load_audit
SET method = %(method)s, extracted = %(extracted)s, upserted = %(upserted)s, deleted = %(deleted)s,
    rejected = %(rejected)s, api_calls = %(api_calls)s, api_usage_after = %(api_usage_after)s,
    salesforce_count = %(salesforce_count)s, count_difference = %(count_difference)s,
    count_note = %(count_note)s, live_salesforce = %(live_salesforce)s,
    live_warehouse = %(live_warehouse)s, live_difference = %(live_difference)s,
    finished_at = %(finished_at)s, status = %(status)s, error = %(error)s
WHERE audit_id = %(audit_id)s;
