{{ config(**day_partitioned(before=[
    "create schema if not exists {{ this.schema }}",
    "create table if not exists {{ customers_replaced() }} (customer_id bigint)",
    "{{ remember_replaced_customers(this) }}",
], after=["{{ remember_replaced_customers(this) }}"])) }}
-- One row per customer and lake day: what customer_totals sums (macros/customers.sql). Its
-- first build takes every day fct_orders holds (a warehouse from before this model starts
-- complete); after that, the run's days only.
select
    order_date,
    customer_id,
    cast(count(*) as bigint) as orders,
    cast(sum(units) as bigint) as units,
    cast(sum(order_total) as decimal(18, 2)) as order_value,
    min(created_at) as first_order_at,
    max(created_at) as last_order_at
from {{ ref('fct_orders') }}
where {% if is_incremental() %}{{ for_day('order_date') }}{% else %}true{% endif %}
group by order_date, customer_id
