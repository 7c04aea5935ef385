{{ config(**day_partitioned()) }}
-- Every distinct order of the day (its first copy) with the reason it cannot be a fact, if
-- any: the checks the streaming job dead-letters on, against the dimension snapshots. A table,
-- so the checks run once for the three marts that read them.
with orders as (
    select * from {{ ref('stg_orders') }}
    where (copy_number = 1 or order_id is null) and {{ for_day('order_date') }}
),

lines as (
    select
        l.order_id,
        l.order_date,
        count(*) as line_count,
        count(p.product_id) as known_products,
        sum(case when l.quantity is null or l.quantity < 1 then 1 else 0 end) as bad_quantities
    from {{ ref('stg_order_lines') }} as l
    left join {{ ref('dim_products') }} as p on p.product_id = l.product_id
    where {{ for_day('l.order_date') }}
    group by l.order_id, l.order_date
)

select
    o.order_id,
    o.order_date,
    o.customer_id,
    o.created_at,
    o.received_at,
    o.kafka_partition,
    o.kafka_offset,
    o.kafka_timestamp,
    case
        when not o.is_json then 'the value is not JSON'
        when o.order_id is null then 'no order_id'
        when o.created_at is null then 'no valid created_at'
        when o.customer_id is null then 'no customer_id'
        when c.customer_id is null then 'unknown customer ' || cast(o.customer_id as varchar)
        when l.line_count is null then 'no items'
        when l.known_products < l.line_count then 'unknown product'
        when l.bad_quantities > 0 then 'a quantity is not a positive integer'
    end as reject_reason
from orders as o
left join {{ ref('dim_customers') }} as c on c.customer_id = o.customer_id
left join lines as l on l.order_id = o.order_id and l.order_date = o.order_date
