{{ config(**day_partitioned()) }}
-- One row per line item of every valid order, priced from the product snapshot.
select
    l.order_id,
    l.line_number,
    l.order_date,
    o.created_at,
    o.customer_id,
    l.product_id,
    p.category,
    p.brand,
    l.quantity,
    p.price as unit_price,
    cast(l.quantity * p.price as decimal(18, 2)) as line_total,
    p.currency
from {{ ref('stg_order_lines') }} as l
join {{ ref('int_order_checks') }} as o
    on o.order_id = l.order_id and o.order_date = l.order_date and o.reject_reason is null
    and {{ for_day('o.order_date') }}
join {{ ref('dim_products') }} as p on p.product_id = l.product_id
where {{ for_day('l.order_date') }}
