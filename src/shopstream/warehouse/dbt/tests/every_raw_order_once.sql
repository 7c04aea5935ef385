-- Every distinct order of raw.orders is in exactly one of fct_orders and order_rejects, once;
-- nothing else is in them. Days are compared whole (a failing day is named).
with raw_orders as (
    select order_date, count(distinct order_id) as orders,
        count(case when order_id is null then 1 end) as without_id
    from {{ ref('stg_orders') }}
    where copy_number = 1 or order_id is null
    group by order_date
),

accounted as (
    select order_date, count(distinct order_id) as orders, count(*) as copies,
        count(case when order_id is null then 1 end) as without_id
    from (
        select order_date, order_id from {{ ref('fct_orders') }}
        union all
        select order_date, order_id from {{ ref('order_rejects') }}
    ) as u
    group by order_date
)

select
    coalesce(r.order_date, a.order_date) as order_date,
    r.orders as raw_orders,
    a.orders as accounted_orders,
    a.copies as accounted_rows
from raw_orders as r
full outer join accounted as a on a.order_date = r.order_date
where r.order_date is null
    or a.order_date is null
    or r.orders <> a.orders
    or a.copies <> a.orders + a.without_id
    or r.without_id <> a.without_id
