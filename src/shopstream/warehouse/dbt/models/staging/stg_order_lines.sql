{{ config(**day_partitioned()) }}
-- The line items of each order's first copy, exploded: one row per item. A table of the day
-- (the other staging models are ephemeral): the items' JSON is parsed once, for the checks
-- and the facts both.
with orders as (
    select order_id, order_date, doc
    from {{ ref('stg_orders') }}
    where copy_number = 1 and order_id is not null and {{ for_day('order_date') }}
)

{{ order_lines('orders') }}
