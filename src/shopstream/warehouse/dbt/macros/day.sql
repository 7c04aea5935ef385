{#
  Day-partitioned models: `{{ config(**day_partitioned()) }}` makes a model incremental by
  lake day. A run with `--vars '{day: D}'` deletes the model's rows of D (pre-hook) and
  appends D's rows again; a run for D never touches any other day. A full build (no `day`)
  builds every day. `append` + our own delete works on every adapter; on Snowflake the new
  rows are staged in a transient table, not a temporary one (fakesnow has no temporary
  relations outside its "temp" catalog; dbt-snowflake supports both).
#}
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
    {% if is_incremental() and var('day') %}
        delete from {{ relation }} where {{ column }} = {{ day_literal() }}
    {% else %}
        select 1
    {% endif %}
{%- endmacro %}

{# `where <column> = <the run's day>` when a day is given, else no filter. #}
{% macro for_day(column) -%}
    {% if var('day') %}{{ column }} = {{ day_literal() }}{% else %}true{% endif %}
{%- endmacro %}

{% macro day_literal() -%}
    cast('{{ var("day") }}' as date)
{%- endmacro %}
