{#
  The lake days a run builds come from the environment, SHOPSTREAM_WAREHOUSE_DAYS: one day
  YYYY-MM-DD or several, comma-separated (`shopstream warehouse build` and the DAG's `build`
  task set it; a catch-up builds every pending day in one dbt invocation). Not `--vars`: dbt
  re-parses the whole project whenever `--vars` change (seconds, on every run), while an
  environment variable read only when executing is invisible to the parser. Unset or empty:
  a full build of every day.

  Day-partitioned models: `{{ config(**day_partitioned()) }}` makes a model incremental by
  lake day. A run for days D1..Dn deletes the model's rows of those days (pre-hook) and
  appends their rows again; it never touches any other day. `append` + our own delete works
  on every adapter; on Snowflake the new rows are staged in a transient table, not a
  temporary one (fakesnow has no temporary relations outside its "temp" catalog;
  dbt-snowflake supports both).
#}
{% macro build_days() -%}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set text = env_var('SHOPSTREAM_WAREHOUSE_DAYS', '') | trim -%}
    {%- set days = [] -%}
    {%- for part in text.split(',') if part | trim -%}
        {%- set day = part | trim -%}
        {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', day) -%}
            {{ exceptions.raise_compiler_error(
                "SHOPSTREAM_WAREHOUSE_DAYS must be dates YYYY-MM-DD, comma-separated (or "
                ~ "empty for every day), not '" ~ text ~ "'") }}
        {%- endif -%}
        {%- do days.append(day) -%}
    {%- endfor -%}
    {{ return(days | unique | sort | list) }}
{%- endmacro %}

{% macro day_partitioned(column='order_date', before=[], after=[]) -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'append',
        'on_schema_change': 'fail',
        'tmp_relation_type': 'transient',
        'pre_hook': before + ["{{ delete_day(this, '" ~ column ~ "') }}"],
        'post_hook': after,
    }) }}
{%- endmacro %}

{# No days: every day is rebuilt, so every row goes first. #}
{% macro delete_day(relation, column) -%}
    {% if is_incremental() %}
        delete from {{ relation }} where {{ for_day(column) }}
    {% else %}
        select 1
    {% endif %}
{%- endmacro %}

{# `<column> in (<the run's days>)` when days are given, else no filter. #}
{% macro for_day(column) -%}
    {%- set days = build_days() -%}
    {%- if not days -%}true
    {%- elif days | length == 1 -%}{{ column }} = cast('{{ days[0] }}' as date)
    {%- else -%}{{ column }} in ({% for d in days %}cast('{{ d }}' as date){% if not loop.last %}, {% endif %}{% endfor %})
    {%- endif -%}
{%- endmacro %}
