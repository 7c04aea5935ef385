{{ config(**day_partitioned()) }}
-- One row per valid order: its lines summed, its customer's attributes from the snapshot.
with lines as (
    select
        order_id,
        cast(count(*) as bigint) as line_count,
        cast(sum(quantity) as bigint) as units,
        cast(sum(line_total) as decimal(18, 2)) as order_total,
        min(currency) as currency
    from {{ ref('fct_order_lines') }}
    where {{ for_day('order_date') }}
    group by order_id
)

select
    o.order_id,
    o.order_date,
    o.created_at,
    o.received_at,
    o.customer_id,
    c.segment as customer_segment,
    c.country as customer_country,
    l.line_count,
    l.units,
    l.order_total,
    l.currency,
    o.kafka_partition,
    o.kafka_offset,
    o.kafka_timestamp
from {{ ref('int_order_checks') }} as o
join lines as l on l.order_id = o.order_id
join {{ ref('dim_customers') }} as c on c.customer_id = o.customer_id
where o.reject_reason is null and {{ for_day('o.order_date') }}
