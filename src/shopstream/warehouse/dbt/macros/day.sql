{#
  The lake day a run builds comes from the environment, SHOPSTREAM_WAREHOUSE_DAY=YYYY-MM-DD
  (`shopstream warehouse transform --date D` and the DAG's dbt tasks set it), not `--vars`:
  dbt re-parses the whole project whenever `--vars` change (seconds, on every day's first
  dbt call), while an environment variable read only when executing is invisible to the
  parser. Unset or empty: a full build of every day.

  Day-partitioned models: `{{ config(**day_partitioned()) }}` makes a model incremental by
  lake day. A run for D deletes the model's rows of D (pre-hook) and appends D's rows again;
  it never touches any other day. `append` + our own delete works on every adapter; on
  Snowflake the new rows are staged in a transient table, not a temporary one (fakesnow has
  no temporary relations outside its "temp" catalog; dbt-snowflake supports both).
#}
{% macro build_day() -%}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set day = env_var('SHOPSTREAM_WAREHOUSE_DAY', '') | trim -%}
    {%- if day and not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', day) -%}
        {{ exceptions.raise_compiler_error(
            "SHOPSTREAM_WAREHOUSE_DAY must be a date YYYY-MM-DD (or empty for every day), not '"
            ~ day ~ "'") }}
    {%- endif -%}
    {{ return(day) }}
{%- endmacro %}

{% macro day_partitioned(column='order_date') -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'append',
        'on_schema_change': 'fail',
        'tmp_relation_type': 'transient',
        'pre_hook': "{{ delete_day(this, '" ~ column ~ "') }}",
    }) }}
{%- endmacro %}

{% macro delete_day(relation, column) -%}
    {% if is_incremental() and build_day() %}
        delete from {{ relation }} where {{ column }} = {{ day_literal() }}
    {% else %}
        select 1
    {% endif %}
{%- endmacro %}

{# `<column> = <the run's day>` when a day is given, else no filter. #}
{% macro for_day(column) -%}
    {% if build_day() %}{{ column }} = {{ day_literal() }}{% else %}true{% endif %}
{%- endmacro %}

{% macro day_literal() -%}
    cast('{{ build_day() }}' as date)
{%- endmacro %}
