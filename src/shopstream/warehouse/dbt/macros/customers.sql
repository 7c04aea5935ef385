{#
  Customer lifetime totals without a pass over the whole history (issue 22).

  `customer_daily` (day-partitioned: one row per customer and lake day) is replaced for the
  run's days like every daily mart; its pre-hook first remembers which customers those days
  held before (`customers_replaced`), so a customer whose orders left a day is recomputed
  too, and its post-hook the customers they hold now. `customer_totals` then recomputes
  exactly the remembered customers from `customer_daily` and forgets them. A run that fails
  in between (even for other days next) leaves the set behind: the next run recomputes a
  superset, still exact. A full build (no days) recomputes everyone.
#}
{% macro customers_replaced() -%}
    {{ return(api.Relation.create(
        database=this.database, schema=this.schema, identifier='customers_replaced')) }}
{%- endmacro %}

{% macro remember_replaced_customers(relation) -%}
    {% if is_incremental() and build_days() %}
        insert into {{ customers_replaced() }}
        select distinct customer_id from {{ relation }} where {{ for_day('order_date') }}
    {% else %}
        select 1
    {% endif %}
{%- endmacro %}

{# The customers a run recomputes (incremental runs for given days only). #}
{% macro touched_customers() -%}
    select customer_id from {{ ref('customer_daily') }} where {{ for_day('order_date') }}
    union
    select customer_id from {{ customers_replaced() }}
{%- endmacro %}

{% macro delete_touched_customers(relation) -%}
    {% if is_incremental() and build_days() %}
        delete from {{ relation }} where customer_id in ({{ touched_customers() }})
    {% elif is_incremental() %}
        delete from {{ relation }}
    {% else %}
        select 1
    {% endif %}
{%- endmacro %}
