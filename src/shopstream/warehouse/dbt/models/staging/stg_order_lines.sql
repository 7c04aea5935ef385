-- The line items of each order's first copy, exploded: one row per item (ephemeral: the
-- items are already parsed, so unnesting them where used is cheaper than a table).
with orders as (
    select order_id, order_date, items
    from {{ ref('stg_orders') }}
    where copy_number = 1 and order_id is not null and {{ for_day('order_date') }}
)

{{ order_lines('orders') }}
