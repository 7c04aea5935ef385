-- The line items of each order's first copy, exploded: one row per item.
with orders as (
    select order_id, order_date, doc
    from {{ ref('stg_orders') }}
    where copy_number = 1 and order_id is not null
)

{{ order_lines('orders') }}
