-- An order's total, units and line count are exactly its lines' (the run's day's orders).
with lines as (
    select
        order_id,
        count(*) as line_count,
        cast(sum(quantity) as bigint) as units,
        cast(sum(line_total) as decimal(18, 2)) as total
    from {{ ref('fct_order_lines') }}
    where {{ for_day('order_date') }}
    group by order_id
)

select o.order_id, o.order_total, l.total, o.units, l.units
from {{ ref('fct_orders') }} as o
left join lines as l on l.order_id = o.order_id
where {{ for_day('o.order_date') }}
    and (
        l.order_id is null
        or o.order_total <> l.total
        or o.units <> l.units
        or o.line_count <> l.line_count
    )
