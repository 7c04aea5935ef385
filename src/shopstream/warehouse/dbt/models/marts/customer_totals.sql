{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    tmp_relation_type='transient',
    pre_hook=[
        "create table if not exists {{ customers_replaced() }} (customer_id bigint)",
        "{{ delete_touched_customers(this) }}",
    ],
    post_hook="delete from {{ customers_replaced() }}",
) }}
-- Each customer's totals over every day, recomputed only for the customers the run's days
-- touched (macros/customers.sql): a run costs what its customers cost, not the history.
select
    customer_id,
    min(first_order_at) as first_order_at,
    max(last_order_at) as last_order_at,
    cast(sum(orders) as bigint) as orders,
    cast(count(*) as bigint) as active_days,
    cast(sum(units) as bigint) as units,
    cast(sum(order_value) as decimal(18, 2)) as lifetime_value
from {{ ref('customer_daily') }}
{% if is_incremental() and build_days() %}
where customer_id in ({{ touched_customers() }})
{% endif %}
group by customer_id
