{{ config(**day_partitioned()) }}
select
    order_date,
    category,
    count(distinct order_id) as orders,
    count(distinct customer_id) as customers,
    sum(quantity) as units,
    sum(line_total) as revenue
from {{ ref('fct_order_lines') }}
where {{ for_day('order_date') }}
group by order_date, category
