{{ config(**day_partitioned()) }}
select
    order_date,
    product_id,
    min(category) as category,
    cast(count(distinct order_id) as bigint) as orders,
    cast(sum(quantity) as bigint) as units,
    cast(sum(line_total) as decimal(18, 2)) as revenue
from {{ ref('fct_order_lines') }}
where {{ for_day('order_date') }}
group by order_date, product_id
