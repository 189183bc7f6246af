-- Name this session (pg_stat_activity.application_name) for the rest of its life.
SELECT set_config('application_name', %(name)s, false);
