-- Every customer who ordered, over the whole history (rebuilt each run: it is one pass over
-- fct_orders, and a customer's value changes with every new day).
select
    o.customer_id,
    c.name,
    c.segment,
    c.country,
    min(o.created_at) as first_order_at,
    max(o.created_at) as last_order_at,
    cast(count(*) as bigint) as orders,
    cast(count(distinct o.order_date) as bigint) as active_days,
    cast(sum(o.units) as bigint) as units,
    cast(sum(o.order_total) as decimal(18, 2)) as lifetime_value,
    cast(sum(o.order_total) / count(*) as decimal(18, 2)) as average_order_value
from {{ ref('fct_orders') }} as o
join {{ ref('dim_customers') }} as c on c.customer_id = o.customer_id
group by o.customer_id, c.name, c.segment, c.country
