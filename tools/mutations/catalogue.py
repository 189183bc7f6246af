"""The protections `make mutations` removes, each with the tests that must fail without it.

Each entry replaces `old` (which must occur exactly once in `path`) by `new`: the smallest edit
that takes the protection away. When code moves, update `old` here in the same commit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    """One protection taken away: an edit of one file and the tests that must then fail."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    more: tuple[tuple[str, str], ...] = ()  # further (old, new) edits in the same file


SAFETY = "tests/reliability/test_data_safety.py::"
HOOK = "tests/plugins/salesforce_pipeline/hooks/test_salesforce.py::"
TRANSPORT = "tests/plugins/salesforce_pipeline/hooks/test_transport.py::"
FAULTS = "tests/reliability/test_fault_matrix.py::"
DAG = "tests/dags/test_salesforce_to_postgres.py::"
DRIFT = "tests/dags/test_schema_drift.py::"
LIMITS = "tests/reliability/test_salesforce_limits.py::"
CONNECT = "tests/deploy/test_connect_page.py::"
CHECKPOINT = "tests/plugins/salesforce_pipeline/test_checkpoint.py::"
LARGE = "tests/reliability/test_large_loads.py::"
PAGES = "tests/plugins/salesforce_pipeline/test_page_batch.py::"
SWAP = "tests/plugins/salesforce_pipeline/test_table_swap.py::"
MERGE = "tests/plugins/salesforce_pipeline/test_slice_merge.py::"
FRAME_RULES = "tests/plugins/salesforce_pipeline/test_frame_rules.py::"
FRAME_PREPARE = "tests/plugins/salesforce_pipeline/test_frame_prepare.py::"
MUTATIONS = (
    # ---- what keeps the warehouse right: guards, lookback, verification, rollback
    Mutation(
        "the upsert guard (an older version never overwrites a newer one)",
        "include/sql/upsert_from_stage.sql",
        "WHERE t.system_modstamp <= EXCLUDED.system_modstamp;",
        ";",
        (DAG + "test_a_backfill_of_an_older_day_never_overwrites_newer_data",),
    ),
    Mutation(
        "the mark-missing guard (rows a newer run wrote stay live)",
        "include/sql/mark_missing_deleted.sql",
        "  AND t._extracted_at < %(extraction_started_at)s\n",
        "",
        (
            "tests/plugins/salesforce_pipeline/test_load.py::test_a_full_refresh_leaves_a_row_a_newer_run_wrote_live",
        ),
    ),
    Mutation(
        "the lookback re-reads before the window",
        "plugins/salesforce_pipeline/extract.py",
        "    return Window(start=interval_start - lookback, end=interval_end)",
        "    return Window(start=interval_start, end=interval_end)",
        (DAG + "test_a_record_committed_late_inside_the_lookback_overlap_is_not_missed",),
    ),
    Mutation(
        "loads verified before commit",
        "plugins/salesforce_pipeline/sync.py",
        "    problem = loader.verification_problem()",
        "    problem = None",
        (SAFETY + "test_rows_that_vanish_during_a_load_fail_it_before_commit_and_change_nothing",),
    ),
    Mutation(
        "rollback on failure",
        "plugins/salesforce_pipeline/sync.py",
        "    _rollback(run.conn, spec.name)",
        "    pass",
        (
            "tests/plugins/salesforce_pipeline/test_performance_paths.py::"
            "test_a_failed_load_leaves_nothing_on_its_connection_for_the_next_to_commit",
        ),
    ),
    # ---- schema drift and calculated fields
    Mutation(
        "a new field's column filled for the existing rows",
        "plugins/salesforce_pipeline/schema_drift.py",
        "    if drift.to_fill and not full_refresh:",
        "    if False:",
        (DRIFT + "test_a_field_added_in_salesforce_is_added_and_filled_for_every_existing_row",),
    ),
    Mutation(
        "a retyped field's column widened",
        "plugins/salesforce_pipeline/schema_drift.py",
        "    if to_widen:",
        "    if False:",
        (DRIFT + "test_a_retyped_field_is_widened_and_its_values_stay_exact",),
    ),
    Mutation(
        "a refresh rewrites only the rows that differ",
        "include/sql/update_from_refresh_stage.sql",
        "  AND ({differs});",
        "  AND ({differs} OR true);",
        (DRIFT + "test_changed_formula_values_are_refreshed_and_only_those_rows_rewritten",),
    ),
    # ---- the hook: TLS, retries, refresh, masking (hooks/transport.py, hooks/salesforce.py)
    Mutation(
        "TLS certificates verified",
        "plugins/salesforce_pipeline/hooks/transport.py",
        '            kwargs["timeout"] = settings.timeout\n',
        '            kwargs["timeout"] = settings.timeout\n        kwargs["verify"] = False\n',
        (HOOK + "test_tls_is_verified_and_env_ca_bundle_is_not_enough",),
    ),
    Mutation(
        "TLS kept on when a caller asks for verify=False",
        "plugins/salesforce_pipeline/hooks/transport.py",
        '        elif kwargs.get("verify") is False:',
        "        elif False:",
        (TRANSPORT + "test_a_callers_verify_false_is_still_verified",),
    ),
    Mutation(
        "the hook's own retries (not Airflow's task retries)",
        "plugins/salesforce_pipeline/hooks/transport.py",
        "stop=stop_any(stop_after_attempt(backoff.max_retries + 1), _AskedToWaitTooLong()),",
        "stop=stop_after_attempt(1),",
        (FAULTS + "test_transient_salesforce_faults_during_a_full_load",),
    ),
    Mutation(
        "Retry-After waited",
        "plugins/salesforce_pipeline/hooks/transport.py",
        "            return max(backoff.delay(state.attempt_number - 1), asked)",
        "            return backoff.delay(state.attempt_number - 1)",
        (TRANSPORT + "test_retry_after_seconds_is_waited_at_least",),
    ),
    Mutation(
        "session refresh (REST)",
        "plugins/salesforce_pipeline/hooks/transport.py",
        "            if response.status_code != 401:",
        "            if True:",
        (HOOK + "test_session_expiry_mid_rest_pagination",),
    ),
    Mutation(
        "session refresh (Bulk 2.0)",
        "plugins/salesforce_pipeline/hooks/transport.py",
        "            if response.status_code != 401:",
        "            if True:",
        (FAULTS + "test_session_expired_mid_bulk_job",),
    ),
    Mutation(
        "session refresh of simple-salesforce's own calls",
        "plugins/salesforce_pipeline/hooks/transport.py",
        '        if not _is_api_call(kwargs.get("headers")):',
        "        if True:",
        (TRANSPORT + "test_inherited_make_query_logs_in_again_when_the_session_expired",),
    ),
    Mutation(
        "the connection's proxies used",
        "plugins/salesforce_pipeline/hooks/transport.py",
        '        if settings.proxies and not kwargs.get("proxies"):',
        "        if False:",
        (TRANSPORT + "test_every_request_goes_through_the_connections_proxy",),
    ),
    Mutation(
        "session ids registered with the secret masker",
        "plugins/salesforce_pipeline/hooks/salesforce.py",
        "        _mask_secret(result.session_id)\n",
        "",
        (HOOK + "test_session_ids_are_registered_with_the_masker",),
    ),
    Mutation(
        "secrets Salesforce echoes are scrubbed from messages",
        "plugins/salesforce_pipeline/hooks/transport.py",
        '                text = text.replace(secret, "***")',
        "                pass",
        (TRANSPORT + "test_a_secret_salesforce_echoes_is_scrubbed_from_the_error",),
    ),
    Mutation(
        "the writer's abort skips the queued jobs",
        "plugins/salesforce_pipeline/writer.py",
        "            if self._error is not None:\n                continue",
        "            if False:\n                continue",
        ("tests/plugins/salesforce_pipeline/test_writer.py",),
    ),
    Mutation(
        "full refresh keeps rejected records live",
        "include/sql/mark_missing_deleted.sql",
        "  AND NOT EXISTS (SELECT 1 FROM {rejected} r WHERE r.id = t.id);",
        "  AND {rejected} IS NOT NULL;",
        (SAFETY + "test_a_record_rejected_in_a_full_refresh_is_not_marked_deleted",),
    ),
    Mutation(
        "extra column added only when the catalog lacks it",
        "plugins/salesforce_pipeline/warehouse.py",
        "missing = [(column, kind) for column, kind in columns if column not in existing]",
        "missing = list(columns)",
        (SAFETY + "test_an_extra_field_whose_column_exists_takes_no_lock_a_reader_could_block",),
    ),
    Mutation(
        "bounded lock waits",
        "plugins/salesforce_pipeline/warehouse.py",
        "    return str(max(1, round(seconds * 1000)))",
        "    return '0'  # Postgres: no timeout (the run then hangs until pytest's timeout)",
        (SAFETY + "test_a_lock_held_too_long_fails_the_attempt_within_the_wait_and_changes_nothing",),
    ),
    Mutation(
        "staging table without the target's constraints",
        "include/sql/create_slice_stage.sql",
        "CREATE UNLOGGED TABLE IF NOT EXISTS {stage} WITH (autovacuum_enabled = false)\n"
        "    AS SELECT {columns} FROM {target} WITH NO DATA;",
        "CREATE UNLOGGED TABLE IF NOT EXISTS {stage} (LIKE {target} INCLUDING DEFAULTS)\n"
        "    WITH (autovacuum_enabled = false);",
        (SAFETY + "test_an_identity_column_a_user_added_does_not_break_loads",),
    ),
    Mutation(
        "narrowed column refused before loading",
        "plugins/salesforce_pipeline/warehouse.py",
        '    problems = column_problems(f"{schema}.{table}", table_columns(conn, schema, table), kinds)\n',
        "    problems = []\n",
        (SAFETY + "test_a_narrowed_column_fails_naming_it_and_loads_nothing",),
    ),
    Mutation(
        "settings failures audited",
        "plugins/salesforce_pipeline/tasks.py",
        "        _audit_unstarted_attempts(org, context, sobject, exc)\n",
        "",
        (SAFETY + "test_invalid_settings_leave_a_failed_audit_row_listing_every_problem",),
    ),
    Mutation(
        "abandoned running rows closed",
        "plugins/salesforce_pipeline/sync.py",
        "        attempt.close_abandoned()\n",
        "",
        ("tests/reliability/test_fault_matrix.py::test_the_worker_killed_mid_load_then_the_task_retried",),
    ),
    Mutation(
        "live drift recorded",
        "plugins/salesforce_pipeline/sync.py",
        "    reconcile.compare_live(hook, spec, loader, summary)\n",
        "",
        (SAFETY + "test_drift_between_salesforce_and_the_warehouse_is_recorded_every_run",),
    ),
    Mutation(
        "released query cursor is transient",
        "plugins/salesforce_pipeline/hooks/transport.py",
        'if status == 400 and code == "INVALID_QUERY_LOCATOR":',
        "if False:",
        (LIMITS + "test_a_released_query_cursor_is_retried_and_the_run_completes",),
    ),
    Mutation(
        "Bulk job failed by Salesforce is transient",
        "plugins/salesforce_pipeline/hooks/bulk2.py",
        "    return bool(_TRANSIENT_JOB_FAILURE.search(error_message))",
        "    return False",
        (LIMITS + "test_a_bulk_job_failed_by_an_internal_error_is_retried",),
    ),
    Mutation(
        "Bulk polls bounded by the budget, job aborted",
        "plugins/salesforce_pipeline/hooks/bulk2.py",
        "            if max_polls is not None and polls >= max_polls:",
        "            if False:",
        (LIMITS + "test_a_bulk_job_that_never_finishes_is_aborted_within_the_runs_budget",),
    ),
    Mutation(
        "a retry resumes its Bulk job",
        "plugins/salesforce_pipeline/hooks/bulk2.py",
        "        resumed = self._resumable_job(resume_job_id, operation, version) if resume_job_id else None",
        "        resumed = None",
        (LIMITS + "test_a_retried_attempt_resumes_the_bulk_job_its_predecessor_started",),
    ),
    Mutation(
        "booleans are not numbers",
        "plugins/salesforce_pipeline/settings.py",
        "numeric = isinstance(value, (int, float)) and not isinstance(value, bool)",
        "numeric = isinstance(value, (int, float))",
        ("tests/plugins/salesforce_pipeline/test_settings.py",),
    ),
    Mutation(
        "sweep compares stamps",
        "include/sql/sweep_differences.sql",
        "WHERE t.id IS NULL OR t.system_modstamp < s.system_modstamp OR t.is_deleted <> s.is_deleted;",
        "WHERE t.id IS NULL OR t.is_deleted <> s.is_deleted;",
        ("tests/plugins/salesforce_pipeline/test_sweep.py",),
    ),
    Mutation(
        "sweep finds late commits",
        "include/sql/sweep_differences.sql",
        "WHERE t.id IS NULL OR",
        "WHERE t.id IS NOT NULL AND",
        (SAFETY + "test_a_record_committed_late_is_in_the_warehouse_after_the_next_sweep",),
    ),
    Mutation(
        "loads of one object serialised (concurrency)",
        "plugins/salesforce_pipeline/staged_load.py",
        "            lock_object(cur, self.target.table_name, self.waits.object_lock_wait, self.waits.lock_timeout)\n",
        "            (lambda *args: None)(cur, self.target.table_name, self.waits.object_lock_wait, self.waits.lock_timeout)\n",
        (
            "tests/plugins/salesforce_pipeline/test_staged_load.py::test_a_second_apply_of_the_object_waits_for_the_first",
            "tests/reliability/test_concurrency.py",
        ),
    ),
    Mutation(
        "cross-tenant guard before anything is read or written",
        "plugins/salesforce_pipeline/sync.py",
        "    tenancy.check_organization(conn, settings, hook.organization_id)\n",
        "",
        ("tests/dags/test_many_orgs.py::test_a_swapped_connection_is_refused_before_anything_is_written",),
    ),
    Mutation(
        "one Salesforce org under one org key only",
        "plugins/salesforce_pipeline/tenancy.py",
        "    others = sorted(key for key, value in rows.items() if key != org and value == organization_id)\n",
        "    others = []\n",
        ("tests/dags/test_many_orgs.py::test_two_entries_that_reach_the_same_salesforce_org_are_refused",),
    ),
    Mutation(
        "a connection from the environment says it hides the UI's",
        "plugins/salesforce_pipeline/settings.py",
        "        _say_if_shadowed(conn_id)\n",
        "",
        (
            "tests/plugins/salesforce_pipeline/test_settings.py::"
            "test_a_connection_from_the_environment_says_it_hides_the_one_saved_in_the_ui",
        ),
    ),
    Mutation(
        "Connect page needs the connection-edit permission",
        "plugins/salesforce_pipeline/connect/app.py",
        'dependencies=[Depends(requires_access_connection("PUT")), Depends(_remember_user())],',
        "dependencies=[Depends(_remember_user())],",
        (CONNECT + "test_every_route_needs_the_permission_to_edit_connections",),
    ),
    Mutation(
        "Connect page forms need their CSRF token",
        "plugins/salesforce_pipeline/connect/app.py",
        ') or not guards.csrf_ok(_secret(), _user_name(request), submitted.get("csrf_token")):',
        "):",
        (CONNECT + "test_a_form_without_its_token_or_from_another_site_is_refused_and_saves_nothing",),
    ),
    Mutation(
        "Connect page forms must come from the same origin",
        "plugins/salesforce_pipeline/connect/guards.py",
        "    return urlsplit(source).netloc.lower() == host.lower()",
        "    return True",
        (CONNECT + "test_a_form_without_its_token_or_from_another_site_is_refused_and_saves_nothing",),
    ),
    Mutation(
        "Connect page logs in only at Salesforce or allowed hosts",
        "plugins/salesforce_pipeline/connect/guards.py",
        "    if host.endswith(SALESFORCE_SUFFIXES):",
        "    if True:",
        (CONNECT + "test_the_server_never_logs_in_at_a_host_the_form_names",),
    ),
    Mutation(
        "the Test button works without a port",
        "plugins/salesforce_pipeline/connect/test_button.py",
        '    if isinstance(data, dict) and data.get("port") == 0:',
        "    if False:",
        (
            "tests/plugins/salesforce_pipeline/connect/test_forms_and_guards.py::test_the_test_button_body_loses_only_a_zero_port",
        ),
    ),
    Mutation(
        "the next try ends a frozen worker's sessions",
        "plugins/salesforce_pipeline/sync.py",
        "        attempt.end_earlier_tries()\n",
        "",
        (
            "tests/reliability/test_zombie_fencing.py::test_a_frozen_worker_neither_blocks_the_next_try_nor_commits_when_it_wakes",
        ),
    ),
    Mutation(
        "a stalled try commits nothing once a later try started",
        "plugins/salesforce_pipeline/audit.py",
        "    if attempt.superseded(loader.conn):",
        "    if False:",
        (
            "tests/reliability/test_zombie_fencing.py::test_a_stalled_try_that_wakes_after_a_later_try_started_commits_nothing",
        ),
    ),
    Mutation(
        "Postgres ends a load's transaction left idle past the bound",
        "plugins/salesforce_pipeline/warehouse.py",
        '            f"-c idle_in_transaction_session_timeout={_ms(self.idle_in_transaction)} "\n',
        "",
        (
            "tests/plugins/salesforce_pipeline/test_warehouse.py::test_postgres_ends_a_transaction_left_idle_past_the_bound",
        ),
    ),
    # ---- large loads (#18): slices, checkpoints, the short apply
    Mutation(
        "a frozen attempt stages nothing more once a later one owns the checkpoint",
        "plugins/salesforce_pipeline/checkpoint.py",
        "        if row is None or row[0] != self.owner:",
        "        if False:",
        (CHECKPOINT + "test_a_later_attempt_claims_the_checkpoint_and_the_earlier_one_stages_nothing_more",),
    ),
    Mutation(
        "a checkpoint that no longer fits starts over",
        "plugins/salesforce_pipeline/checkpoint.py",
        "            fits = old_print == print_ and (old_method == method or not method_requested)",
        "            fits = True",
        (CHECKPOINT + "test_a_checkpoint_that_no_longer_fits_is_dropped_with_its_staged_rows",),
    ),
    Mutation(
        "a slice whose staged rows are gone is read again",
        "plugins/salesforce_pipeline/checkpoint.py",
        "            if self.in_stage(state) and state.staged and self.rows_in_stage(state) != state.staged:",
        "            if False:",
        (CHECKPOINT + "test_a_slice_whose_stage_lost_its_rows_is_read_again",),
    ),
    Mutation(
        "stale checkpoints expire",
        "plugins/salesforce_pipeline/checkpoint.py",
        "        stale = [row[0] for row in cur.fetchall()]",
        "        stale = []",
        (LARGE + "test_a_stale_checkpoint_expires_with_its_staged_rows",),
    ),
    Mutation(
        "the slice reaching up to now is read after all the others",
        "plugins/salesforce_pipeline/slice_plan.py",
        "    return [s for s in slices if not s.reaches_now], [s for s in slices if s.reaches_now]",
        "    return slices, []",
        (
            "tests/plugins/salesforce_pipeline/test_slice_plan.py::"
            "test_the_slice_reaching_up_to_now_is_read_last_and_holds_only_records_changed_since",
        ),
    ),
    Mutation(
        "the merge keeps one row per Id, its newest version",
        "include/sql/merge_slice_stages.sql",
        "SELECT DISTINCT ON (id) {columns}",
        "SELECT {columns}",
        # A first load into a table that can be swapped merges into its successor instead.
        (SWAP + "test_a_view_on_the_table_keeps_it_loaded_in_place",),
    ),
    Mutation(
        "a first load's successor keeps one row per Id, its newest version",
        "include/sql/fill_successor.sql",
        "SELECT DISTINCT ON (id) {columns}",
        "SELECT {columns}",
        # A first load of one slice: its stage (each Id twice) fills the successor in one pass.
        (SWAP + "test_a_first_load_swaps_in_the_table_with_its_names_definitions_grants_and_comments",),
    ),
    Mutation(
        "a failed slice is read again alone",
        "plugins/salesforce_pipeline/slice_runner.py",
        "SLICE_ATTEMPTS = 3",
        "SLICE_ATTEMPTS = 1",
        (LARGE + "test_a_slice_failing_mid_way_is_read_again_alone",),
    ),
    Mutation(
        "each staged page is committed with its checkpoint",
        "plugins/salesforce_pipeline/slice_stage.py",
        "    conn.commit()\n    state.staged, state.done, state.resume_at",
        "    state.staged, state.done, state.resume_at",
        (LARGE + "test_a_load_killed_at_any_point_then_retried_ends_exact[rest-half staged]",),
    ),
    Mutation(
        "the next try ends its predecessor's slice sessions",
        "plugins/salesforce_pipeline/audit.py",
        '                cur.execute(read_sql("terminate_named_sessions.sql"), {"name": slice_session_name(audit_id)})\n',
        "                cur.execute('SELECT 1 WHERE false')\n",
        (
            "tests/reliability/test_zombie_fencing.py::test_the_next_try_ends_the_sessions_its_predecessors_slices_staged_through",
        ),
    ),
    Mutation(
        "a first load builds the table's own indexes again",
        "plugins/salesforce_pipeline/staged_load.py",
        "                cur.execute(definition)",
        "                pass",
        (
            "tests/plugins/salesforce_pipeline/test_staged_load.py::test_a_first_load_builds_the_tables_indexes_again_exactly",
        ),
    ),
    # ---- a first load swapped in under the lock (#18): built beside the table, swapped only when safe
    Mutation(
        "a table that got rows while the apply waited for it is not swapped away",
        "plugins/salesforce_pipeline/staged_load.py",
        '        self.target.run("lock_table_exclusive.sql")\n        ((self.was_empty,),) = self.target.query("target_is_empty.sql")\n',
        '        self.target.run("lock_table_exclusive.sql")\n',
        (SWAP + "test_a_row_committed_while_the_apply_waits_for_the_table_is_kept",),
    ),
    Mutation(
        "only a swappable table is swapped (a view on it keeps it in place)",
        "plugins/salesforce_pipeline/table_swap.py",
        "        return [row[0] for row in cur.fetchall()]",
        "        return []",
        (SWAP + "test_a_view_on_the_table_keeps_it_loaded_in_place",),
    ),
    Mutation(
        "a successor shaped otherwise than the table is not swapped in",
        "plugins/salesforce_pipeline/table_swap.py",
        "    if _comparable(expected) != _comparable(built):",
        "    if False:",
        (SWAP + "test_an_index_added_after_the_merge_is_kept",),
    ),
    Mutation(
        "the swap is undone with the apply's transaction",
        "plugins/salesforce_pipeline/table_swap.py",
        '    target.run("swap_in_successor.sql", successor=successor, new_name=sql.Identifier(target.spec.table))\n',
        '    target.run("swap_in_successor.sql", successor=successor, new_name=sql.Identifier(target.spec.table))\n'
        "    target.conn.commit()\n",
        (SWAP + "test_a_failure_inside_the_swap_leaves_the_empty_table_exactly_as_it_was",),
    ),
    Mutation(
        "a successor left by a killed attempt is built again",
        "plugins/salesforce_pipeline/slice_merge.py",
        '    target.run("drop_tables.sql", tables=merged)\n',
        "",
        (SWAP + "test_a_successor_left_by_a_killed_attempt_is_built_again",),
    ),
    Mutation(
        "a resumed query sends only a Salesforce cursor path to the instance",
        "plugins/salesforce_pipeline/hooks/rest.py",
        "            if not _CURSOR_PATH.match(resume_url):\n",
        "            if False:\n",
        (HOOK + "test_a_query_resumes_from_a_stored_cursor_path_and_refuses_anything_else",),
    ),
    Mutation(
        "a slice read again from its start takes its rows out of the successor",
        "include/sql/reset_successor_slice.sql",
        "WHERE (%(lower)s::timestamptz IS NULL",
        "WHERE false AND (%(lower)s::timestamptz IS NULL",
        (
            CHECKPOINT
            + "test_a_first_loads_slices_stage_into_the_successor_and_one_read_again_takes_only_its_rows",
        ),
    ),
    Mutation(
        "the slices of a successor that is gone are read again",
        "plugins/salesforce_pipeline/checkpoint.py",
        "        if self.into_successor and not self._successor_exists():",
        "        if False:",
        (CHECKPOINT + "test_the_slices_of_a_successor_that_is_gone_are_read_again",),
    ),
    Mutation(
        "the slice read last replaces older versions in the successor",
        "include/sql/merge_last_slice.sql",
        "DELETE FROM {successor} kept USING {stage} newer WHERE kept.id = newer.id;\n",
        "",
        (MERGE + "test_the_slice_read_last_is_merged_in_at_each_records_newest_version",),
    ),
    Mutation(
        "the slice read last does not replace newer versions in the successor",
        "include/sql/merge_last_slice.sql",
        "WHERE kept.id = newer.id AND kept.system_modstamp > newer.system_modstamp;",
        "WHERE false;",
        (MERGE + "test_the_slice_read_last_is_merged_in_at_each_records_newest_version",),
    ),
    Mutation(
        "an index built by a killed attempt's merge is not built again",
        "include/sql/successor_build_statements.sql",
        "WHERE name IS NULL OR name NOT IN (SELECT relname FROM built)",
        "WHERE true",
        (MERGE + "test_the_slice_read_last_is_merged_in_at_each_records_newest_version",),
    ),
    Mutation(
        "an Id staged twice into the successor does not fail every retry",
        "plugins/salesforce_pipeline/slice_merge.py",
        "        except errors.UniqueViolation:",
        "        except errors.DivisionByZero:",
        (MERGE + "test_an_id_staged_twice_into_the_successor_is_kept_once_at_its_newest_version",),
    ),
    Mutation(
        "a slice whose cursor is gone queries on past its last committed record",
        "plugins/salesforce_pipeline/slice_stage.py",
        "            if state.last_id is None:\n",
        "            if True:\n",
        (LARGE + "test_a_slice_whose_cursor_is_gone_queries_on_past_its_last_committed_record",),
    ),
    Mutation(
        "only an Id read back from the checkpoint reaches a query",
        "plugins/salesforce_pipeline/extract.py",
        '    if not re.fullmatch(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?", record_id):  # an Id, nothing else\n',
        "    if False:\n",
        (
            "tests/plugins/salesforce_pipeline/test_extract.py::"
            "test_a_slice_query_reads_in_id_order_and_goes_on_only_past_a_real_id",
        ),
    ),
    Mutation(
        "only a cursor that is gone sends a slice to a new query (a broken page still fails)",
        "plugins/salesforce_pipeline/slice_stage.py",
        "        except SalesforceCursorGone as exc:\n",
        "        except SalesforcePipelineError as exc:\n",
        (
            FAULTS + "test_a_page_broken_on_every_try_fails_without_a_partial_chunk"
            "[malformed JSON page (every try): fails, nothing loaded-rest-<lambda>]",
        ),
    ),
    Mutation(
        "the slices with most records left are read first (none is left to run alone at the end)",
        "plugins/salesforce_pipeline/slice_runner.py",
        "    return sorted(states, key=lambda state: max(state.plan.expected - state.staged, 0), reverse=True)\n",
        "    return list(states)\n",
        (LARGE + "test_the_slices_with_most_records_left_are_read_first",),
    ),
    Mutation(
        "a Bulk 2.0 slice may be a little over its share (a near-middle halving is not halved again)",
        "plugins/salesforce_pipeline/slice_plan.py",
        "    return max(slice_records, share + int(share * BULK_SHARE_SLACK))\n",
        "    return max(slice_records, share)\n",
        (
            "tests/plugins/salesforce_pipeline/test_slice_plan.py::"
            "test_a_bulk_load_whose_halving_lands_off_the_middle_is_still_two_slices",
        ),
    ),
    Mutation(
        "a successor filled without autovacuum gets it back before it can become the table",
        "include/sql/successor_build_statements.sql",
        "SELECT 3, NULL, format('ALTER TABLE %%s RESET (autovacuum_enabled, toast.autovacuum_enabled)', %(successor)s)\n"
        "UNION ALL\n",
        "",
        (MERGE + "test_the_successor_is_not_vacuumed_while_it_fills_and_ends_with_the_tables_own_options",),
    ),
    Mutation(
        "Salesforce's live count asked while the slices merge",
        "plugins/salesforce_pipeline/sync.py",
        "        live = asking.submit(hook.count, live_soql, include_deleted=False)\n"
        "        merged = slice_merge.merge(saved)\n",
        "        merged = slice_merge.merge(saved)\n"
        "        live = asking.submit(hook.count, live_soql, include_deleted=False)\n",
        (LARGE + "test_salesforces_live_count_is_asked_while_the_slices_merge",),
    ),
    Mutation(
        "a REST date of the year 0 goes to the rule, which refuses it",
        "plugins/salesforce_pipeline/frame_rules.py",
        '        form = column.str.contains(_CANONICAL_DATE) & ~column.str.starts_with("0000")\n',
        "        form = column.str.contains(_CANONICAL_DATE)\n",
        (FRAME_RULES + "test_each_kind_converts_and_rejects_as_the_current_rules_do",),
    ),
    Mutation(
        "an e-mail padded with what Python strips and Unicode does not goes to the rule",
        "plugins/salesforce_pipeline/frame_rules.py",
        '_PLAIN_ASCII = r"^[\\x00-\\x1b\\x20-\\x7f]*$"\n',
        '_PLAIN_ASCII = r"^[\\x00-\\x7f]*$"\n',
        (FRAME_RULES + "test_each_kind_converts_and_rejects_as_the_current_rules_do",),
    ),
    Mutation(
        "a REST page with a structured value where a scalar belongs is read value by value",
        "plugins/salesforce_pipeline/batch_frame.py",
        "    except pl.exceptions.ComputeError:\n",
        "    except ():\n",
        (FRAME_PREPARE + "test_a_structured_value_where_text_belongs_rejects_its_record_as_before",),
    ),
    Mutation(
        "a rejected REST record keeps its values as sent",
        "plugins/salesforce_pipeline/frame_prepare.py",
        "    return RestColumnDecoder(fields)(body)[0].columns\n",
        "    return raw.to_dict(as_series=False)\n",
        (FRAME_PREPARE + "test_a_batch_with_a_reject_a_duplicate_and_relationships_gives_the_same_payload",),
    ),
    Mutation(
        "a text column is escaped for COPY in every chunk where one of its values needs it",
        "plugins/salesforce_pipeline/frame_prepare.py",
        "pl.col(texts).str.contains_any(_ESCAPED)",
        "pl.col(texts).str.contains_any(_ESCAPED[:3])",
        (FRAME_PREPARE + "test_only_the_chunks_whose_text_needs_escapes_are_escaped_and_all_match",),
    ),
    Mutation(
        "no COPY payload of REST pages holds more than chunk_size rows",
        "plugins/salesforce_pipeline/frame_prepare.py",
        "    for start in range(0, totals.rows, max(fmt.chunk_size, 1)):\n",
        "    for start in range(0, totals.rows, max(totals.rows, 1)):\n",
        (
            "tests/plugins/salesforce_pipeline/test_performance_paths.py::"
            "test_pages_are_converted_a_page_at_a_time_and_loaded_in_chunks",
        ),
        more=(("frame.slice(start, fmt.chunk_size)", "frame.slice(start)"),),
    ),
    Mutation(
        "polars loaded with one allocator arena that gives memory back soon",
        "plugins/salesforce_pipeline/frames.py",
        'os.environ.setdefault("_RJEM_MALLOC_CONF", "narenas:1,dirty_decay_ms:100,muzzy_decay_ms:0")\n',
        "",
        (
            "tests/plugins/salesforce_pipeline/test_frames.py::"
            "test_polars_loads_with_one_thread_and_an_allocator_that_gives_memory_back",
        ),
    ),
    Mutation(
        "polars loaded with one thread per call",
        "plugins/salesforce_pipeline/frames.py",
        'os.environ.setdefault("POLARS_MAX_THREADS", "1")\n',
        "",
        (
            "tests/plugins/salesforce_pipeline/test_frames.py::"
            "test_polars_loads_with_one_thread_and_an_allocator_that_gives_memory_back",
        ),
    ),
    Mutation(
        "a blank line in a Bulk 2.0 page is no record",
        "plugins/salesforce_pipeline/batch_frame.py",
        "    return page.filter(~blank).select(columns)\n",
        "    return page.select(columns)\n",
        (PAGES + "test_a_blank_line_in_a_bulk_page_is_no_record",),
    ),
)
