-- Every customer who ordered, with lifetime orders and value: customer_totals (kept
-- incrementally) with the customer's current attributes. Rebuilt each run from tables the
-- size of the customer base, never from the order history.
select
    t.customer_id,
    c.name,
    c.segment,
    c.country,
    t.first_order_at,
    t.last_order_at,
    t.orders,
    t.active_days,
    t.units,
    t.lifetime_value,
    cast(t.lifetime_value / t.orders as decimal(18, 2)) as average_order_value
from {{ ref('customer_totals') }} as t
join {{ ref('dim_customers') }} as c on c.customer_id = t.customer_id
